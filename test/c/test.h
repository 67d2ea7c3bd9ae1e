/* A tiny test runner for the pure-C helpers: CHECK macros count passes and
 * failures; main.c runs every suite and prints "N passed, N failed". */
#ifndef CRPG_TEST_H
#define CRPG_TEST_H

#include <stddef.h>
#include <string.h>

void test_check(int ok, const char *file, int line, const char *expr);
void test_check_int(const char *file, int line, const char *expr, long long got,
                    long long want);
void test_check_mem(const char *file, int line, const char *expr, const char *got,
                    size_t gotlen, const char *want, size_t wantlen);

#define CHECK(cond) test_check((cond) ? 1 : 0, __FILE__, __LINE__, #cond)
#define CHECK_INT(got, want) \
  test_check_int(__FILE__, __LINE__, #got, (long long)(got), (long long)(want))
/* got/gotlen against a NUL-terminated want */
#define CHECK_MEM(got, gotlen, want) \
  test_check_mem(__FILE__, __LINE__, #got, (got), (gotlen), (want), strlen(want))
/* got/gotlen against want/wantlen (want may hold NULs) */
#define CHECK_BYTES(got, gotlen, want, wantlen) \
  test_check_mem(__FILE__, __LINE__, #got, (got), (gotlen), (want), (wantlen))
/* two NUL-terminated strings */
#define CHECK_STR(got, want) \
  test_check_mem(__FILE__, __LINE__, #got, (got), strlen(got), (want), strlen(want))

void test_strbuf(void);
void test_array_literal(void);
void test_bytea(void);
void test_redact(void);
void test_json(void);
void test_sql_split(void);
void test_conninfo(void);
void test_pool_core(void);
void test_pool_registry(void);
void test_copy_text(void);
void test_binary(void);

#endif
