/*
** Replays fuzz inputs through a fuzz target without libFuzzer: every file
** named, or every file in a directory named, once, in order. Exits 0 when
** each input returns (a crash or an abort ends the process), printing the
** count. What CI runs: deterministic, no search.
*/
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

static int by_name(const void* a, const void* b) {
  return strcmp(*(char* const*) a, *(char* const*) b);
}

static int replay_file(const char* path) {
  FILE* f = fopen(path, "rb");
  char* buf;
  long len;
  if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0) {
    fprintf(stderr, "replay: cannot read %s\n", path);
    if (f != NULL) fclose(f);
    return -1;
  }
  rewind(f);
  buf = malloc(len ? (size_t) len : 1);
  if (buf == NULL || fread(buf, 1, (size_t) len, f) != (size_t) len) {
    fprintf(stderr, "replay: cannot read %s\n", path);
    free(buf);
    fclose(f);
    return -1;
  }
  fclose(f);
  LLVMFuzzerTestOneInput((const uint8_t*) buf, (size_t) len);
  free(buf);
  return 0;
}

int main(int argc, char** argv) {
  int i, count = 0;
  for (i = 1; i < argc; i++) {
    struct stat st;
    if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
      DIR* d = opendir(argv[i]);
      struct dirent* e;
      char** names = NULL;
      size_t n = 0, j;
      if (d == NULL) return 1;
      while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        names = realloc(names, (n + 1) * sizeof(*names));
        names[n] = malloc(strlen(argv[i]) + strlen(e->d_name) + 2);
        sprintf(names[n++], "%s/%s", argv[i], e->d_name);
      }
      closedir(d);
      qsort(names, n, sizeof(*names), by_name);
      for (j = 0; j < n; j++) {
        if (replay_file(names[j]) != 0) return 1;
        count++;
        free(names[j]);
      }
      free(names);
    } else {
      if (replay_file(argv[i]) != 0) return 1;
      count++;
    }
  }
  printf("%d inputs replayed\n", count);
  return 0;
}
