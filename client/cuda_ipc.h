/* The client's CUDA IPC side (private to libmuond-client): the CUDA runtime is loaded with
 * dlopen on first use, so the library links against libc alone and a host-memory trainer never
 * loads CUDA. Each function returns 0, or -1 with the reason written into err. */
#ifndef MUOND_CLIENT_CUDA_IPC_H
#define MUOND_CLIENT_CUDA_IPC_H

#include <stddef.h>
#include <stdint.h>

#include "muond_protocol.h"

/* Makes the GPU with PCI bus id bus_id current and opens the handle there. */
int muond_cuda_ipc_open(const char *bus_id, const uint8_t handle[MUOND_IPC_HANDLE_BYTES],
                        void **base, char *err, size_t err_len);
int muond_cuda_ipc_close(void *base, char *err, size_t err_len);
/* A synchronous copy of bytes between any two of host and device memory. */
int muond_cuda_copy(void *dst, const void *src, size_t bytes, char *err, size_t err_len);

#endif
