/* catalog.c: board data for vgpu-sysfs-emu (see catalog.h).
 *
 * Framebuffer sizes and per-GPU instance limits follow the NVIDIA vGPU user
 * guide's tables for each board: instances x framebuffer never exceeds the
 * GPU's memory.  Descriptions are built from these fields by the model in
 * NVIDIA's format ("num_heads=4, frl_config=60, framebuffer=2048M,
 * max_resolution=5120x2880, max_instance=4"). */
#include <stdio.h>
#include <strings.h>

#include "catalog.h"

#define R4K "4096x2160"
#define R5K "5120x2880"
#define R8K "7680x4320"
#define RAPP "1280x1024"
#define RB0 "2560x1600"

/* Tesla M10: 4 Maxwell GPUs of 8 GB on one board; mdev on each GPU. */
static const emu_profile m10_profiles[] = {
	{ 35, "GRID M10-0B", 512, 16, 2, 45, RB0 },
	{ 36, "GRID M10-0Q", 512, 16, 2, 60, RB0 },
	{ 37, "GRID M10-1A", 1024, 8, 1, 60, RAPP },
	{ 38, "GRID M10-1B", 1024, 8, 4, 45, R5K },
	{ 39, "GRID M10-1Q", 1024, 8, 4, 60, R5K },
	{ 40, "GRID M10-2A", 2048, 4, 1, 60, RAPP },
	{ 41, "GRID M10-2B", 2048, 4, 4, 45, R5K },
	{ 42, "GRID M10-2Q", 2048, 4, 4, 60, R8K },
	{ 43, "GRID M10-4A", 4096, 2, 1, 60, RAPP },
	{ 44, "GRID M10-4Q", 4096, 2, 4, 60, R8K },
	{ 45, "GRID M10-8A", 8192, 1, 1, 60, RAPP },
	{ 46, "GRID M10-8Q", 8192, 1, 4, 60, R8K },
};

/* A100 PCIe 40 GB: time-sliced compute profiles, mdev on SR-IOV VFs. */
static const emu_profile a100_profiles[] = {
	{ 471, "NVIDIA A100-4C", 4096, 10, 1, 60, R4K },
	{ 472, "NVIDIA A100-5C", 5120, 8, 1, 60, R4K },
	{ 473, "NVIDIA A100-8C", 8192, 5, 1, 60, R4K },
	{ 474, "NVIDIA A100-10C", 10240, 4, 1, 60, R4K },
	{ 475, "NVIDIA A100-20C", 20480, 2, 1, 60, R4K },
	{ 476, "NVIDIA A100-40C", 40960, 1, 1, 60, R4K },
};

/* L40S 48 GB: vPC (B), vApps (A), vWS (Q) and compute (C), mdev on VFs. */
static const emu_profile l40s_profiles[] = {
	{ 1155, "NVIDIA L40S-1B", 1024, 32, 4, 45, R5K },
	{ 1156, "NVIDIA L40S-2B", 2048, 24, 4, 45, R5K },
	{ 1157, "NVIDIA L40S-1Q", 1024, 32, 4, 60, R5K },
	{ 1158, "NVIDIA L40S-2Q", 2048, 24, 4, 60, R8K },
	{ 1159, "NVIDIA L40S-3Q", 3072, 16, 4, 60, R8K },
	{ 1160, "NVIDIA L40S-4Q", 4096, 12, 4, 60, R8K },
	{ 1161, "NVIDIA L40S-6Q", 6144, 8, 4, 60, R8K },
	{ 1162, "NVIDIA L40S-8Q", 8192, 6, 4, 60, R8K },
	{ 1163, "NVIDIA L40S-12Q", 12288, 4, 4, 60, R8K },
	{ 1164, "NVIDIA L40S-16Q", 16384, 3, 4, 60, R8K },
	{ 1165, "NVIDIA L40S-24Q", 24576, 2, 4, 60, R8K },
	{ 1166, "NVIDIA L40S-48Q", 49152, 1, 4, 60, R8K },
	{ 1167, "NVIDIA L40S-1A", 1024, 32, 1, 60, RAPP },
	{ 1168, "NVIDIA L40S-2A", 2048, 24, 1, 60, RAPP },
	{ 1169, "NVIDIA L40S-4C", 4096, 12, 1, 60, R4K },
	{ 1170, "NVIDIA L40S-6C", 6144, 8, 1, 60, R4K },
	{ 1171, "NVIDIA L40S-8C", 8192, 6, 1, 60, R4K },
	{ 1172, "NVIDIA L40S-12C", 12288, 4, 1, 60, R4K },
	{ 1173, "NVIDIA L40S-16C", 16384, 3, 1, 60, R4K },
	{ 1174, "NVIDIA L40S-24C", 24576, 2, 1, 60, R4K },
	{ 1175, "NVIDIA L40S-48C", 49152, 1, 1, 60, R4K },
};

/* H100 PCIe 80 GB on the vendor VF interface: MIG-backed (1-10C ...) and
 * time-sliced (4C ...) compute profiles.  The emulator applies the
 * homogeneous rule to both (real MIG-backed vGPUs may mix slice sizes). */
static const emu_profile h100_profiles[] = {
	{ 1414, "NVIDIA H100-1-10C", 10240, 7, 1, 60, R4K },
	{ 1415, "NVIDIA H100-1-20C", 20480, 4, 1, 60, R4K },
	{ 1416, "NVIDIA H100-2-20C", 20480, 3, 1, 60, R4K },
	{ 1417, "NVIDIA H100-3-40C", 40960, 2, 1, 60, R4K },
	{ 1418, "NVIDIA H100-4-40C", 40960, 1, 1, 60, R4K },
	{ 1419, "NVIDIA H100-7-80C", 81920, 1, 1, 60, R4K },
	{ 1420, "NVIDIA H100-4C", 4096, 20, 1, 60, R4K },
	{ 1421, "NVIDIA H100-5C", 5120, 16, 1, 60, R4K },
	{ 1422, "NVIDIA H100-8C", 8192, 10, 1, 60, R4K },
	{ 1423, "NVIDIA H100-10C", 10240, 8, 1, 60, R4K },
	{ 1424, "NVIDIA H100-16C", 16384, 5, 1, 60, R4K },
	{ 1425, "NVIDIA H100-20C", 20480, 4, 1, 60, R4K },
	{ 1426, "NVIDIA H100-40C", 40960, 2, 1, 60, R4K },
	{ 1427, "NVIDIA H100-80C", 81920, 1, 1, 60, R4K },
};

#define PROFILES(a) a, sizeof(a) / sizeof((a)[0])

static const emu_catalog catalogs[] = {
	{ "M10", "Tesla M10", 0x13bd, 0, EMU_MDEV_ON_PF, 0, 4, 4, 8, false, PROFILES(m10_profiles) },
	{ "A100", "NVIDIA A100-PCIE-40GB", 0x20f1, 0x20f1, EMU_MDEV_ON_VF, 16, 1, 1, 8, true,
	  PROFILES(a100_profiles) },
	{ "L40S", "NVIDIA L40S", 0x26b9, 0x26b9, EMU_MDEV_ON_VF, 32, 1, 1, 8, true,
	  PROFILES(l40s_profiles) },
	{ "H100", "NVIDIA H100 PCIe", 0x2331, 0x2331, EMU_VENDOR_VF, 32, 1, 1, 8, true,
	  PROFILES(h100_profiles) },
};

const emu_catalog *emu_catalog_find(const char *name)
{
	for (size_t i = 0; i < sizeof(catalogs) / sizeof(catalogs[0]); i++)
		if (strcasecmp(catalogs[i].name, name) == 0)
			return &catalogs[i];
	return NULL;
}

const char *emu_catalog_names(void)
{
	return "M10, A100, L40S, H100";
}

/* Root buses of the slots boards sit in, one per x16 slot of a 2-socket host. */
static const unsigned slot_bus[8] = { 0x41, 0x81, 0xc1, 0x01, 0x21, 0x61, 0xa1, 0xe1 };

/* Bus number of physical GPU i.  Boards with several GPUs sit behind a PCIe
 * switch: GPU buses follow the switch's upstream and downstream buses. */
static unsigned gpu_bus(const emu_catalog *c, unsigned i)
{
	unsigned board = i / c->gpus_per_board, pos = i % c->gpus_per_board;
	unsigned bus = slot_bus[board % 8];
	if (c->gpus_per_board > 1)
		bus += 2 + pos;
	return bus & 0xff;
}

void emu_catalog_gpu_addr(const emu_catalog *c, unsigned i, char out[13])
{
	snprintf(out, 13, "0000:%02x:00.0", gpu_bus(c, i));
}

void emu_catalog_gpu_bridge(const emu_catalog *c, unsigned i, char *out, size_t outsz)
{
	unsigned board = i / c->gpus_per_board, pos = i % c->gpus_per_board;
	unsigned bus = slot_bus[board % 8], root = bus - 1;
	if (c->gpus_per_board > 1)
		snprintf(out, outsz,
			 "/sys/devices/pci0000:%02x/0000:%02x:01.1/0000:%02x:00.0/0000:%02x:%02x.0",
			 root, root, bus, bus + 1, 8 + pos);
	else
		snprintf(out, outsz, "/sys/devices/pci0000:%02x/0000:%02x:01.1", root, root);
}

void emu_catalog_vf_addr(const emu_catalog *c, unsigned i, unsigned k, char out[13])
{
	unsigned devfn = (4 + k) & 0xff;
	snprintf(out, 13, "0000:%02x:%02x.%u", gpu_bus(c, i), (devfn / 8) & 0x1f, devfn % 8);
}
