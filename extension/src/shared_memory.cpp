// The registry behind shared_memory.hpp: plain arrays, filled in _PG_init before any hook runs.
#include "shared_memory.hpp"

extern "C" {
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
}

namespace flowgres {
namespace {

struct SharedStruct {
    const char *name;
    Size (*size)();
    void (*initialise)(void *);
    void **address;
};

constexpr int kMaxStructs = 8;
SharedStruct structs[kMaxStructs];
int struct_count = 0;
shmem_request_hook_type previous_request_hook = nullptr;
shmem_startup_hook_type previous_startup_hook = nullptr;

void request_shared_memory() {
    if (previous_request_hook) previous_request_hook();
    for (int i = 0; i < struct_count; i++) RequestAddinShmemSpace(structs[i].size());
}

void attach_shared_memory() {
    if (previous_startup_hook) previous_startup_hook();
    LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
    for (int i = 0; i < struct_count; i++) {
        bool found = false;
        Size size = structs[i].size();
        void *memory = ShmemInitStruct(structs[i].name, size, &found);
        if (!found) {
            memset(memory, 0, size);
            structs[i].initialise(memory);
        }
        *structs[i].address = memory;
    }
    LWLockRelease(AddinShmemInitLock);
}

}  // namespace

void register_shared_struct(const char *name, Size (*size)(), void (*initialise)(void *memory), void **address) {
    if (struct_count == kMaxStructs) elog(ERROR, "flowgres: too many shared-memory structs");
    if (struct_count == 0) {
        previous_request_hook = shmem_request_hook;
        shmem_request_hook = request_shared_memory;
        previous_startup_hook = shmem_startup_hook;
        shmem_startup_hook = attach_shared_memory;
    }
    structs[struct_count++] = SharedStruct{name, size, initialise, address};
}

}  // namespace flowgres
