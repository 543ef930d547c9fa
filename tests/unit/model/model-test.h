/* model-test.h: what the lib/model unit tests share. */
#pragma once

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "model/model.h"
#include "model/units.h"

#define MiB (1024ull * 1024ull)
#define GiB (1024ull * MiB)

static inline void assert_close(double got, double want, double tol)
{
	if (fabs(got - want) > tol)
		fail_msg("got %.9f, want %.9f (+-%g)", got, want, tol);
}
