/* Classify one input with a real model through the Strata C API, printing
 * the top class as `top class=<index> score=<score>` (the same line as
 * examples/rust-classify).
 *
 * Usage: c-classify MODEL INPUT.npy   (INPUT: a float32, C-order .npy array)
 *
 * Build (see `cargo xtask examples`):
 *   cargo build -p strata-capi
 *   cc -I crates/strata-capi/include examples/c-classify/main.c \
 *      target/debug/libstrata_capi.a -lpthread -ldl -lm -o c-classify
 * or, with Strata installed: cc main.c $(pkg-config --cflags --libs strata)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strata.h"

/* Read a little-endian float32 C-order .npy file: shape into dims (at most
 * 8), data into a malloc'ed buffer. Returns 0 on success. */
static int read_npy_f32(const char *path, int64_t *dims, size_t *rank, float **data, size_t *count) {
  FILE *f = fopen(path, "rb");
  if (!f) return -1;
  unsigned char pre[10];
  int ok = fread(pre, 1, 10, f) == 10 && memcmp(pre, "\x93NUMPY", 6) == 0 && pre[6] == 1;
  size_t hlen = ok ? (size_t)pre[8] | (size_t)pre[9] << 8 : 0;
  char *header = ok ? calloc(hlen + 1, 1) : NULL;
  ok = header && fread(header, 1, hlen, f) == hlen && strstr(header, "'<f4'") &&
       strstr(header, "'fortran_order': False");
  const char *p = ok ? strchr(strstr(header, "'shape'"), '(') : NULL;
  *rank = 0;
  *count = 1;
  if (p) {
    p++;
    while (*p && *p != ')' && *rank < 8) {
      char *end;
      long long d = strtoll(p, &end, 10);
      if (end == p) break;
      dims[(*rank)++] = d;
      *count *= (size_t)d;
      p = end;
      while (*p == ',' || *p == ' ') p++;
    }
  }
  ok = ok && p && *p == ')';
  *data = ok ? malloc(*count * sizeof(float) + 1) : NULL;
  ok = *data && fread(*data, sizeof(float), *count, f) == *count;
  free(header);
  fclose(f);
  if (!ok) {
    free(*data);
    *data = NULL;
    return -1;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: c-classify MODEL INPUT.npy\n");
    return 2;
  }
  int64_t dims[8];
  size_t rank, count;
  float *x;
  if (read_npy_f32(argv[2], dims, &rank, &x, &count) != 0) {
    fprintf(stderr, "c-classify: cannot read %s as a float32 .npy file\n", argv[2]);
    return 1;
  }

  int rc = 1;
  StrataOptions *options = NULL;
  StrataSession *session = NULL;
  StrataTensor *input = NULL;
  StrataTensor **outputs = NULL;
  size_t n_outputs = 0;
  const char *input_name;
  /* Each call returns a status; the message of a failure is strata_last_error(). */
  if (strata_options_create(&options) != STRATA_STATUS_OK ||
      strata_options_set_backend(options, "cpu") /* the default; "reference" is the oracle */ != STRATA_STATUS_OK ||
      strata_session_create_from_file(argv[1], options, &session) != STRATA_STATUS_OK ||
      strata_session_input_name(session, 0, &input_name) != STRATA_STATUS_OK ||
      strata_session_output_count(session, &n_outputs) != STRATA_STATUS_OK)
    goto fail;
  /* The tensor borrows x: keep x alive until the tensor and outputs are freed. */
  if (strata_tensor_create(STRATA_DTYPE_FLOAT, dims, rank, x, count * sizeof(float), &input) != STRATA_STATUS_OK)
    goto fail;
  outputs = calloc(n_outputs, sizeof(StrataTensor *));
  const StrataTensor *inputs[1] = {input};
  const char *names[1] = {input_name};
  if (strata_session_run(session, names, inputs, 1, outputs, n_outputs) != STRATA_STATUS_OK) goto fail;

  const void *bytes;
  size_t len;
  StrataDtype dtype;
  if (strata_tensor_dtype(outputs[0], &dtype) != STRATA_STATUS_OK ||
      strata_tensor_data(outputs[0], &bytes, &len) != STRATA_STATUS_OK)
    goto fail;
  if (dtype != STRATA_DTYPE_FLOAT || len < sizeof(float)) {
    fprintf(stderr, "c-classify: the first output is not a non-empty float tensor\n");
    goto done;
  }
  const float *scores = bytes;
  size_t best = 0;
  for (size_t i = 1; i < len / sizeof(float); i++)
    if (scores[i] > scores[best]) best = i;
  printf("top class=%zu score=%.6f\n", best, (double)scores[best]);
  rc = 0;
  goto done;

fail:
  fprintf(stderr, "c-classify: %s\n", strata_last_error());
done:
  for (size_t i = 0; outputs && i < n_outputs; i++) strata_tensor_free(outputs[i]);
  free(outputs);
  strata_tensor_free(input);
  strata_session_free(session);
  strata_options_free(options);
  free(x);
  return rc;
}
