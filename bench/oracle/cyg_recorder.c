/*
 * Runtime call-edge recorder for a QEMU build made with -finstrument-functions.
 *
 * gcc calls __cyg_profile_func_enter(fn, call_site) on entry to every
 * instrumented function: `fn` is the function's address, `call_site` the
 * return address in its caller.  This file keeps the distinct
 * (call_site, fn) pairs in a fixed-size open-addressing hash set and writes
 * them, relative to the main program's load base (QEMU is PIE), to the file
 * named by $CHAINTRACE_CYG_OUT (".<pid>" appended) when the process exits.
 * A thread-local direct-mapped cache of recently seen pairs keeps the common
 * case (a hot pair seen again) free of any lock; a miss takes one mutex (a signal handler
 * that lands inside the hook returns at once rather than deadlock on it).
 * Mapping the addresses to functions is done offline (bench/oracle/build-and-record).
 *
 * Built without -finstrument-functions; every function is also marked
 * no_instrument_function so it can never recurse into itself.
 */
#define _GNU_SOURCE
#include <link.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NOINST __attribute__((no_instrument_function))
#define TABLE_BITS 22                 /* 4M slots, 64 MiB: far above QEMU's distinct pairs */
#define TABLE_SIZE (1u << TABLE_BITS)
#define CACHE_BITS 12

struct pair { uintptr_t site, fn; };

static struct pair *table;
static size_t used;
static int overflow;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static __thread struct pair cache[1u << CACHE_BITS];
static __thread int busy;             /* a signal handler that interrupts the hook is not recorded */
static uintptr_t load_base;
static volatile int dumped;

void __cyg_profile_func_enter(void *fn, void *call_site) NOINST;
void __cyg_profile_func_exit(void *fn, void *call_site) NOINST;

static inline uint64_t NOINST mix(uintptr_t a, uintptr_t b)
{
    uint64_t h = (uint64_t)a * 0x9E3779B97F4A7C15ull ^ ((uint64_t)b + 0x632BE59BD9B4E019ull);
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ull;
    return h ^ (h >> 32);
}

static int NOINST base_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    *(uintptr_t *)data = info->dlpi_addr;   /* the first object is the main program */
    return 1;
}

static void NOINST dump(void)
{
    const char *prefix = getenv("CHAINTRACE_CYG_OUT");
    char path[4096];
    FILE *f;
    size_t i;

    if (!prefix || !table || __atomic_exchange_n(&dumped, 1, __ATOMIC_SEQ_CST)) {
        return;
    }
    snprintf(path, sizeof(path), "%s.%ld", prefix, (long)getpid());
    f = fopen(path, "w");
    if (!f) {
        return;
    }
    pthread_mutex_lock(&lock);
    fprintf(f, "# base %#lx pairs %zu overflow %d\n", (unsigned long)load_base, used, overflow);
    for (i = 0; i < TABLE_SIZE; i++) {
        if (table[i].fn) {
            fprintf(f, "%lx %lx\n", (unsigned long)(table[i].site - load_base),
                    (unsigned long)(table[i].fn - load_base));
        }
    }
    pthread_mutex_unlock(&lock);
    fclose(f);
}

static void NOINST term_dump(void)
{
    dump();
}

__attribute__((constructor(101))) static void NOINST init(void)
{
    dl_iterate_phdr(base_cb, &load_base);
    if (getenv("CHAINTRACE_CYG_OUT")) {
        table = calloc(TABLE_SIZE, sizeof(*table));
        atexit(term_dump);
    }
}

__attribute__((destructor)) static void NOINST fini(void)
{
    dump();
}

void __cyg_profile_func_enter(void *fn_, void *site_)
{
    uintptr_t fn = (uintptr_t)fn_, site = (uintptr_t)site_;
    uint64_t h;
    struct pair *c;
    size_t i;

    if (!table) {
        return;
    }
    h = mix(site, fn);
    c = &cache[h & ((1u << CACHE_BITS) - 1)];
    if (c->fn == fn && c->site == site) {
        return;
    }
    if (busy) {
        return;
    }
    busy = 1;
    c->fn = fn;
    c->site = site;
    pthread_mutex_lock(&lock);
    for (i = h >> (64 - TABLE_BITS); ; i = (i + 1) & (TABLE_SIZE - 1)) {
        if (table[i].fn == fn && table[i].site == site) {
            break;
        }
        if (!table[i].fn) {
            if (used * 10 < (size_t)TABLE_SIZE * 9) {
                table[i].site = site;
                table[i].fn = fn;
                used++;
            } else {
                overflow = 1;
            }
            break;
        }
    }
    pthread_mutex_unlock(&lock);
    busy = 0;
}

void __cyg_profile_func_exit(void *fn, void *call_site)
{
    (void)fn;
    (void)call_site;
}
