/* cmd/main.c - placeholder entry point while the server is assembled (replaced in this series). */
#include <stdio.h>
int main(void)
{
    fprintf(stderr, "cairn: not assembled yet\n");
    return 1;
}
