/* cmd-device.c: the device verbs of vgpumig (table filled in by its owner). */
#include "cli.h"

const cli_verb cli_device_verbs[] = {
	{ NULL, NULL, NULL },
};
