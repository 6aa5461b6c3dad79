// The lightboat program (being written).
#include <cstdio>
int main() {
  std::fprintf(stderr, "lightboat: not built yet\n");
  return 1;
}
