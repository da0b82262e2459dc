/*
** A small C test harness: one behaviour per test, CHECK counts failures,
** main.c runs every test and prints "N passed, N failed".
*/
#ifndef WEIR_TEST_HARNESS_H
#define WEIR_TEST_HARNESS_H

#include <stdio.h>

extern int wr_test_failures;

#define CHECK(cond)                                                         \
  do {                                                                      \
    if (!(cond)) {                                                          \
      fprintf(stderr, "  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__,    \
              #cond);                                                       \
      wr_test_failures++;                                                   \
    }                                                                       \
  } while (0)

typedef void (*wr_test_fn)(void);
typedef struct {
  const char* name;
  wr_test_fn fn;
} wr_test_t;

#endif
