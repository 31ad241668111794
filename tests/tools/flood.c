/* Prints N distinct names (one per line, as hex) whose 64-bit FNV-1a hashes all
 * share their low B bits: the kind of input that turns an unkeyed hash index
 * into one long probe chain. The low B bits of FNV-1a's state depend only on
 * the low B bits before each byte, so names built from blocks that all lead
 * from one state to the same next state collide: 3-byte blocks (any bytes but
 * NUL and '/') are sorted by the state they lead to, and the fullest bucket is
 * kept for every step. Usage: flood N [B]   (B defaults to 19) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define PRIME 1099511628211ULL
#define BASIS 14695981039346656037ULL

static uint64_t step(uint64_t h, unsigned char c) { return (h ^ c) * PRIME; }

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    long n = atol(argv[1]);
    int bits = argc > 2 ? atoi(argv[2]) : 19;
    uint64_t mask = (1ULL << bits) - 1;
    enum { DEPTH = 5, MAXB = 64 };
    unsigned char blocks[DEPTH][MAXB][3];
    int nb[DEPTH];
    uint32_t *count = calloc(mask + 1, sizeof *count);
    uint64_t h = BASIS & mask; /* all names start from the basis */
    for (int d = 0; d < DEPTH; d++) {
        for (uint64_t i = 0; i <= mask; i++)
            count[i] = 0;
        for (int a = 1; a < 256; a++)
            for (int b = 1; b < 256; b++)
                for (int c = 1; c < 256; c++) {
                    if (a == '/' || b == '/' || c == '/')
                        continue;
                    count[step(step(step(h, (unsigned char)a), (unsigned char)b), (unsigned char)c) & mask]++;
                }
        uint64_t best = 0;
        for (uint64_t i = 0; i <= mask; i++)
            if (count[i] > count[best])
                best = i;
        nb[d] = 0;
        for (int a = 1; a < 256 && nb[d] < MAXB; a++)
            for (int b = 1; b < 256 && nb[d] < MAXB; b++)
                for (int c = 1; c < 256 && nb[d] < MAXB; c++) {
                    if (a == '/' || b == '/' || c == '/')
                        continue;
                    if ((step(step(step(h, (unsigned char)a), (unsigned char)b), (unsigned char)c) & mask) == best) {
                        blocks[d][nb[d]][0] = (unsigned char)a;
                        blocks[d][nb[d]][1] = (unsigned char)b;
                        blocks[d][nb[d]][2] = (unsigned char)c;
                        nb[d]++;
                    }
                }
        h = best;
    }
    long printed = 0;
    int idx[DEPTH] = {0};
    while (printed < n) {
        for (int d = 0; d < DEPTH; d++)
            for (int k = 0; k < 3; k++)
                printf("%02x", blocks[d][idx[d]][k]);
        putchar('\n');
        printed++;
        int d = DEPTH - 1;
        while (d >= 0 && ++idx[d] == nb[d])
            idx[d--] = 0;
        if (d < 0)
            break;
    }
    free(count);
    return printed == n ? 0 : 1;
}
