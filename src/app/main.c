#include <string.h>

#include "app.h"

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "jobs") == 0)
		return app_jobs_cmd(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "job") == 0)
		return app_job_cmd(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "store") == 0)
		return app_store_cmd(argc - 1, argv + 1);
	return app_daemon_main(argc, argv);
}
