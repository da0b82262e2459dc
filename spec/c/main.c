/*
** Runs every C test and prints "N passed, N failed" as its last line.
*/
#include <stdio.h>
#include <string.h>

#include "harness.h"

int wr_test_failures = 0;

extern const wr_test_t wr_keygroup_tests[];
extern const wr_test_t wr_barrier_tests[];
extern const wr_test_t wr_snapshot_tests[];
extern const wr_test_t wr_frame_tests[];
extern const wr_test_t wr_auth_tests[];
extern const wr_test_t wr_serialized_tests[];
extern const wr_test_t wr_address_tests[];
extern const wr_test_t wr_heartbeat_tests[];
extern const wr_test_t wr_fork_tests[];

int main(int argc, char** argv) {
  const wr_test_t* suites[] = { wr_keygroup_tests, wr_barrier_tests,
                                wr_snapshot_tests, wr_frame_tests,
                                wr_auth_tests, wr_serialized_tests,
                                wr_address_tests, wr_heartbeat_tests,
                                wr_fork_tests };
  int passed = 0, failed = 0;
  size_t s;
  const wr_test_t* t;
  for (s = 0; s < sizeof(suites) / sizeof(suites[0]); s++) {
    for (t = suites[s]; t->name != NULL; t++) {
      int before = wr_test_failures;
      if (argc > 1 && strstr(t->name, argv[1]) == NULL) continue;
      t->fn();
      if (wr_test_failures == before) {
        passed++;
        printf("ok %s\n", t->name);
      } else {
        failed++;
        printf("FAIL %s\n", t->name);
      }
    }
  }
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
