/* CUDA device discovery, safe on machines without a GPU or driver. */
#ifndef MU_KERNELS_CUDA_DEVICE_H
#define MU_KERNELS_CUDA_DEVICE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Number of usable CUDA devices; 0 when there is no driver or device, with the runtime's
 * explanation written into why. */
int mu_cuda_device_count(char *why, size_t why_len);

/* Makes device (local_rank mod the device count) current for this process, so that the ranks
 * of a node spread over its GPUs; MUOND_CUDA_DEVICE overrides the choice. Returns the device,
 * or -1 when there is none (why says so). */
int mu_cuda_select_device(int local_rank, char *why, size_t why_len);

/* The PCI bus id ("0000:65:00.0") of the current device, for hwloc to place it. 0, or -1. */
int mu_cuda_current_bus_id(char *bus_id, size_t len);

/* Exports device memory for another process of this node: the CUDA IPC handle of the
 * allocation that begins at base (64 bytes into handle) and the PCI bus id of its GPU (into
 * bus_id), so that the other process opens it on the same GPU. 0, or -1 with why written. */
int mu_cuda_ipc_export(void *base, unsigned char handle[64], char *bus_id, size_t bus_id_len,
                       char *why, size_t why_len);

/* The compute stream of a cuda kernel backend (a cudaStream_t), or NULL for another backend:
 * what the NCCL communicator orders its work against. */
struct mu_backend;
void *mu_cuda_backend_stream(struct mu_backend *be);

#ifdef __cplusplus
}
#endif

#endif
