/*
 * The bench guest: a freestanding multiboot kernel that dirties a working set
 * at a set rate, so that a real QEMU migration has a guest whose writes are
 * known exactly. Parameters come on the -append command line:
 *
 *   base=ADDR      first byte of the regions (default 4 MiB, above the kernel)
 *   nonzero=BYTES  written once, then left alone (the model's --nonzero)
 *   wss=BYTES      the working set, written once, then dirtied forever
 *   rate=BYTES/S   page writes per second times 4096
 *   pattern=sweep|random|hot-cold   the model's --write-pattern
 *
 * Time is the HPET's main counter (QEMU's pc has one at 0xFED00000). It
 * prints "guest: ready" on COM1 when the regions are written, then a line
 * every 10 s with the pages written so far. A write changes one byte of a
 * page to a value it did not hold, so a page written is a page changed.
 */
typedef unsigned int u32;
typedef unsigned long long u64;

#define PAGE 4096u
#define HPET ((volatile u32 *)0xFED00000u)

static inline void outb(unsigned short port, unsigned char value)
{
    __asm__ volatile("outb %0, %1" : : "a"(value), "Nd"(port));
}

static void puts_serial(const char *text)
{
    while (*text) {
        outb(0x3F8, (unsigned char)*text++);
    }
}

static void put_number(u32 value)
{
    char digits[24];
    int n = 0;
    do {
        digits[n++] = (char)('0' + value % 10);
        value /= 10;
    } while (value);
    while (n) {
        outb(0x3F8, (unsigned char)digits[--n]);
    }
}

static u64 hpet_counter(void)
{
    u32 high, low;
    do {
        high = HPET[0xF4 / 4];
        low = HPET[0xF0 / 4];
    } while (high != HPET[0xF4 / 4]);
    return ((u64)high << 32) | low;
}

/* Return the value of "name" (e.g. "wss=") on the command line, or fallback. */
static u64 option(const char *cmdline, const char *name, u64 fallback)
{
    for (const char *at = cmdline; at && *at; at++) {
        const char *a = at, *b = name;
        while (*b && *a == *b) {
            a++;
            b++;
        }
        if (!*b) {
            u64 value = 0;
            while (*a >= '0' && *a <= '9') {
                value = value * 10 + (u64)(*a++ - '0');
            }
            return value;
        }
    }
    return fallback;
}

static int has(const char *cmdline, const char *word)
{
    for (const char *at = cmdline; at && *at; at++) {
        const char *a = at, *b = word;
        while (*b && *a == *b) {
            a++;
            b++;
        }
        if (!*b) {
            return 1;
        }
    }
    return 0;
}

static void fill(volatile unsigned char *start, u32 bytes, unsigned char value)
{
    for (u32 i = 0; i < bytes; i += 4) {
        *(volatile u32 *)(start + i) = value * 0x01010101u;
    }
}

void guest_main(u32 *info)
{
    const char *cmdline = (info[0] & 4) ? (const char *)info[4] : "";
    u32 base = (u32)option(cmdline, "base=", 4u << 20);
    u32 nonzero = (u32)option(cmdline, "nonzero=", 0);
    u32 wss = (u32)option(cmdline, "wss=", 16u << 20);
    u32 rate_pages = (u32)(option(cmdline, "rate=", 8u << 20) >> 12); /* page writes per second */
    int random = has(cmdline, "pattern=random");
    int hot_cold = has(cmdline, "pattern=hot-cold");
    volatile unsigned char *set = (volatile unsigned char *)(base + nonzero);
    u32 pages = wss / PAGE ? wss / PAGE : 1, hot = pages / 5 ? pages / 5 : 1;
    u32 ticks_per_ms, carry = 0, credit = 0, seconds = 0, ms_in_second = 0;
    u32 sweep = 0, lap = 0, seed = 2463534242u, due = 0, written = 0;
    u64 last;

    /* No 64-bit division here: a 32-bit freestanding build has no libgcc to do it. */
    HPET[0x10 / 4] |= 1; /* ENABLE_CNF: start the main counter */
    ticks_per_ms = 1000000000u / HPET[0x04 / 4] * 1000u; /* COUNTER_CLK_PERIOD is in fs */
    fill((volatile unsigned char *)base, nonzero, 0xA5);
    fill(set, pages * PAGE, 0x5A);
    puts_serial("guest: ready wss=");
    put_number(pages * PAGE);
    puts_serial(" rate_pages=");
    put_number(rate_pages);
    puts_serial(random ? " pattern=random\n" : hot_cold ? " pattern=hot-cold\n" : " pattern=sweep\n");

    last = hpet_counter();
    for (;;) {
        u64 now = hpet_counter();
        carry += (u32)(now - last);
        last = now;
        while (carry >= ticks_per_ms) {
            /* One more millisecond: rate_pages / 1000 more pages are due. */
            carry -= ticks_per_ms;
            credit += rate_pages;
            while (credit >= 1000) {
                credit -= 1000;
                due++;
            }
            if (++ms_in_second == 10000) {
                ms_in_second = 0;
                seconds += 10;
                puts_serial("guest: ");
                put_number(seconds);
                puts_serial(" s, ");
                put_number(written);
                puts_serial(" pages written\n");
            }
        }
        while (written != due) {
            u32 page;
            if (random || hot_cold) {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                if (hot_cold && pages > hot) {
                    /* 80 % of the writes in the first 20 % of the working set. */
                    page = (seed % 10 < 8) ? (seed >> 4) % hot : hot + (seed >> 4) % (pages - hot);
                } else {
                    page = seed % pages;
                }
            } else {
                page = sweep;
                if (++sweep == pages) {
                    sweep = 0;
                    lap++;
                }
            }
            set[page * PAGE + (lap + written) % PAGE] = (unsigned char)(written | 1);
            written++;
        }
        for (int i = 0; i < 200; i++) {
            __asm__ volatile("pause");
        }
    }
}
