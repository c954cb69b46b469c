/*
 * dirtier: the guest's /init for the model-vs-QEMU bench.
 *
 * Writes a working set of dirtier.wss bytes once (so none of it is a zero
 * page), prints "dirtier: ready", then sweeps it page by page at
 * dirtier.rate bytes per second, one byte per page, forever: pages written
 * in an interval t are min(rate * t, wss), the model's dirtying rule.
 * Both values come from the kernel command line.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096L

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Return the value of "name=" on the kernel command line, or fallback. */
static long cmdline_value(const char *cmdline, const char *name, long fallback)
{
    const char *at = strstr(cmdline, name);
    return at ? atol(at + strlen(name)) : fallback;
}

int main(void)
{
    char cmdline[4096] = "";
    FILE *file;
    long wss, rate, pages, written = 0, index;
    unsigned char *set;
    double start, next_report;

    mkdir("/proc", 0555);
    mount("proc", "/proc", "proc", 0, NULL);
    file = fopen("/proc/cmdline", "r");
    if (file) {
        if (!fgets(cmdline, sizeof(cmdline), file)) {
            cmdline[0] = '\0';
        }
        fclose(file);
    }
    wss = cmdline_value(cmdline, "dirtier.wss=", 64L << 20);
    rate = cmdline_value(cmdline, "dirtier.rate=", 8L << 20);
    pages = wss / PAGE;
    if (pages < 1) {
        pages = 1;
    }

    set = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (set == MAP_FAILED) {
        printf("dirtier: mmap of %ld bytes failed\n", pages * PAGE);
        for (;;) {
            pause();
        }
    }
    memset(set, 0xa5, pages * PAGE);
    printf("dirtier: ready wss=%ld rate=%ld\n", pages * PAGE, rate);
    fflush(stdout);

    start = now();
    next_report = start + 10;
    for (;;) {
        double t = now();
        long due = (long)((t - start) * rate / PAGE);

        /* Catch up to the pages due by now, then nap: the rate holds on average. */
        while (written < due) {
            index = written % pages;
            set[index * PAGE + (written / pages) % PAGE] = (unsigned char)written;
            written++;
        }
        if (t >= next_report) {
            printf("dirtier: %.0f s, %ld pages written\n", t - start, written);
            fflush(stdout);
            next_report += 10;
        }
        usleep(1000);
    }
}
