/* The smallest useful CGI program: used by scripts/bench.sh to measure the
 * gateway itself rather than an interpreter's start-up. */
#include <stdio.h>

int main(void)
{
	fputs("Content-Type: text/plain\r\n\r\nHello, world!\n", stdout);
	return 0;
}
