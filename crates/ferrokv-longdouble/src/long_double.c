/*
 * The few `long double` operations INCRBYFLOAT and HINCRBYFLOAT need, done by the C library
 * exactly as valkey-server does them, so replies match byte for byte: parsing with strtold,
 * one addition, and printing with "%.17Lf" followed by trimming.
 *
 * Values cross the FFI boundary only by pointer to a 16-byte, 16-aligned buffer owned by
 * Rust; the static assertion below guarantees a `long double` fits in it.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(long double) <= 16, "long double must fit the 16-byte Rust buffer");
_Static_assert(_Alignof(long double) <= 16, "long double must fit the 16-aligned Rust buffer");

/* Longest text accepted as a number, and the output buffer size, as in valkey-server. */
#define FKV_LD_MAX_CHARS (5 * 1024)

/* Returns 1 and stores the value if `text[0..len]` is a number Valkey accepts: the whole
 * text is consumed by strtold, no leading space, no NaN, no overflow, no underflow to zero
 * (a subnormal result is accepted). */
int fkv_ld_parse(const char *text, size_t len, long double *out) {
    char buf[FKV_LD_MAX_CHARS];
    char *end;
    long double value;

    if (len == 0 || len >= sizeof(buf)) return 0;
    memcpy(buf, text, len);
    buf[len] = '\0';
    if (isspace((unsigned char)buf[0])) return 0;
    errno = 0;
    value = strtold(buf, &end);
    if ((size_t)(end - buf) != len) return 0;
    if (errno == ERANGE &&
        (value == HUGE_VALL || value == -HUGE_VALL || fpclassify(value) == FP_ZERO))
        return 0;
    if (errno == EINVAL || isnan(value)) return 0;
    *out = value;
    return 1;
}

void fkv_ld_add(const long double *a, const long double *b, long double *out) {
    *out = *a + *b;
}

int fkv_ld_is_finite(const long double *a) {
    return isfinite(*a) ? 1 : 0;
}

/* Writes the "human" form into buf (capacity cap, at least FKV_LD_MAX_CHARS): 17 digits
 * after the point, trailing zeros and a bare point removed, "-0" printed as "0".
 * Returns the length, or 0 if it does not fit. */
size_t fkv_ld_format_human(const long double *value, char *buf, size_t cap) {
    int n;
    if (isinf(*value)) {
        n = snprintf(buf, cap, "%s", *value > 0 ? "inf" : "-inf");
        return n > 0 && (size_t)n < cap ? (size_t)n : 0;
    }
    n = snprintf(buf, cap, "%.17Lf", *value);
    if (n <= 0 || (size_t)n + 1 > cap) return 0;
    if (memchr(buf, '.', (size_t)n) != NULL) {
        while (n > 0 && buf[n - 1] == '0') n--;
        if (n > 0 && buf[n - 1] == '.') n--;
    }
    if (n == 2 && buf[0] == '-' && buf[1] == '0') {
        buf[0] = '0';
        n = 1;
    }
    return (size_t)n;
}
