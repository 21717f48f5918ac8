/* See cuda_ipc.h. The runtime's entry points are declared here by their documented C
 * signatures; a cudaIpcMemHandle_t is a struct of 64 bytes passed by value. */
#include "cuda_ipc.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

typedef struct ipc_handle {
    char reserved[MUOND_IPC_HANDLE_BYTES];
} ipc_handle_t;

enum { CUDA_SUCCESS = 0, IPC_LAZY_ENABLE_PEER_ACCESS = 1, MEMCPY_DEFAULT = 4 };

static struct cuda_runtime {
    void *lib;
    char why[256]; /* why loading failed, if it did */
    int (*device_by_bus_id)(int *device, const char *bus_id);
    int (*set_device)(int device);
    int (*ipc_open)(void **ptr, ipc_handle_t handle, unsigned flags);
    int (*ipc_close)(void *ptr);
    int (*memcpy)(void *dst, const void *src, size_t bytes, int kind);
    const char *(*error_string)(int error);
} rt;

static pthread_once_t loaded = PTHREAD_ONCE_INIT;

/* The runtime the daemon was built with first, then any other. */
static void load(void)
{
    static const char *const names[] = {"libcudart.so.13", "libcudart.so.12", "libcudart.so"};
    for (size_t i = 0; i < sizeof names / sizeof names[0] && !rt.lib; i++)
        rt.lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    if (!rt.lib) {
        snprintf(rt.why, sizeof rt.why,
                 "the daemon shares GPU memory, but no CUDA runtime (libcudart.so.13, .12 or "
                 "libcudart.so) can be loaded: %s",
                 dlerror());
        return;
    }
    /* POSIX lets dlsym's result be used as a function pointer; assigning through void **
     * says so without a cast ISO C warns about. */
    *(void **)&rt.device_by_bus_id = dlsym(rt.lib, "cudaDeviceGetByPCIBusId");
    *(void **)&rt.set_device = dlsym(rt.lib, "cudaSetDevice");
    *(void **)&rt.ipc_open = dlsym(rt.lib, "cudaIpcOpenMemHandle");
    *(void **)&rt.ipc_close = dlsym(rt.lib, "cudaIpcCloseMemHandle");
    *(void **)&rt.memcpy = dlsym(rt.lib, "cudaMemcpy");
    *(void **)&rt.error_string = dlsym(rt.lib, "cudaGetErrorString");
    if (!rt.device_by_bus_id || !rt.set_device || !rt.ipc_open || !rt.ipc_close || !rt.memcpy ||
        !rt.error_string) {
        snprintf(rt.why, sizeof rt.why, "the CUDA runtime lacks an IPC entry point");
        dlclose(rt.lib);
        rt.lib = NULL;
    }
}

static int ready(char *err, size_t err_len)
{
    pthread_once(&loaded, load);
    if (rt.lib)
        return 0;
    snprintf(err, err_len, "%s", rt.why);
    return -1;
}

static int failed(int code, const char *what, char *err, size_t err_len)
{
    snprintf(err, err_len, "%s: %s (%d)", what, rt.error_string(code), code);
    return -1;
}

int muond_cuda_ipc_open(const char *bus_id, const uint8_t handle[MUOND_IPC_HANDLE_BYTES],
                        void **base, char *err, size_t err_len)
{
    if (ready(err, err_len) != 0)
        return -1;
    int device = -1, code = rt.device_by_bus_id(&device, bus_id);
    if (code != CUDA_SUCCESS) {
        char what[96];
        snprintf(what, sizeof what, "the daemon's GPU %s is not visible here", bus_id);
        return failed(code, what, err, err_len);
    }
    if ((code = rt.set_device(device)) != CUDA_SUCCESS)
        return failed(code, "cudaSetDevice", err, err_len);
    ipc_handle_t h;
    memcpy(h.reserved, handle, sizeof h.reserved);
    if ((code = rt.ipc_open(base, h, IPC_LAZY_ENABLE_PEER_ACCESS)) != CUDA_SUCCESS)
        return failed(code, "cudaIpcOpenMemHandle", err, err_len);
    return 0;
}

int muond_cuda_ipc_close(void *base, char *err, size_t err_len)
{
    if (ready(err, err_len) != 0)
        return -1;
    const int code = rt.ipc_close(base);
    return code == CUDA_SUCCESS ? 0 : failed(code, "cudaIpcCloseMemHandle", err, err_len);
}

int muond_cuda_copy(void *dst, const void *src, size_t bytes, char *err, size_t err_len)
{
    if (ready(err, err_len) != 0)
        return -1;
    const int code = rt.memcpy(dst, src, bytes, MEMCPY_DEFAULT);
    return code == CUDA_SUCCESS ? 0 : failed(code, "cudaMemcpy", err, err_len);
}
