/* cmd-migrate.c: the migrate verbs of vgpumig (table filled in by its owner). */
#include "cli.h"

const cli_verb cli_migrate_verbs[] = {
	{ NULL, NULL, NULL },
};
