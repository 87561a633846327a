#include <CUnit/Basic.h>
int main(void)
{
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	unsigned failed = CU_get_number_of_failures();
	CU_cleanup_registry();
	return (int)failed;
}
