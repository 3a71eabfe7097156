/* The specification's usage example in C, linked against libaether:
 *   gcc examples/leak_check.c -Icsrc/include -Lbuild/release -laether -Wl,-rpath,$PWD/build/release -o leak_check
 *   ./leak_check; echo $?      (0: no leaks) */
#include <aether.h>
#include <string.h>

int main(void) {
  /* Initialize memory system */
  aether_memory_init();

  /* Allocate 100 bytes */
  void *buffer = aether_safe_malloc(100);
  if (buffer == NULL) return 2;

  /* Use the buffer... */
  memset(buffer, 0x2a, 100);

  /* Free when done */
  aether_safe_free(buffer);

  /* Check for leaks at program end */
  size_t leaks = aether_check_leaks();
  if (leaks > 0) {
    /* Handle memory leaks */
    return 1;
  }
  return 0;
}
