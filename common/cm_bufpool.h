/*
 * cm_bufpool.h - large buffers recycled per thread (the GET pieces of the gateway, the chunk
 * reads a node serves), and in one shared pool for buffers that change threads (a PUT's stripe
 * and compression frames, the cells a cluster node receives; below).
 *
 * A buffer past glibc's mmap threshold (a stripe, a 256 KiB cell) costs an mmap, a page fault per
 * 4 KiB page as it is filled and a munmap once freed: per request, a good part of a large GET's
 * CPU (docs/performance.md). A loop thread that reads such pieces into buffers of this pool, adds
 * them to an evbuffer by reference with cm_bufpool_cleanup and gets them back when the socket
 * took them (on the same loop) maps and faults each buffer once.
 *
 * Bounds: a thread keeps at most CM_BUFPOOL_MAX idle buffers of at most CM_BUFPOOL_BYTES in all,
 * of any sizes (a buffer given back to a full pool replaces an idle one of another size, or is
 * freed); buffers
 * in use are the callers' to bound; the scratch buffer is one per thread, the largest asked for.
 * A thread's idle buffers are freed when it exits, or by
 * cm_bufpool_release. Any thread; a buffer may be given back on another thread than the one that
 * took it (it joins that pool).
 */
#ifndef CM_BUFPOOL_H
#define CM_BUFPOOL_H

#include <stddef.h>

#define CM_BUFPOOL_MAX 8 /* idle buffers a thread keeps */
#define CM_BUFPOOL_BYTES (8u << 20)

/* A buffer of size bytes, from this thread's pool when it holds one of that size, else fresh;
 * NULL: no memory. Give it back with cm_bufpool_put (or cm_bufpool_cleanup), or free() it. */
void *cm_bufpool_take(size_t size);
/* Buffer buf of size bytes (from cm_bufpool_take or malloc) into this thread's pool, or freed.
 * NULL is a no-op. */
void cm_bufpool_put(void *buf, size_t size);
/* cm_bufpool_put in the shape of an evbuffer reference's cleanup: arg is the buffer's size,
 * (void *)(uintptr_t)size; len (the bytes referenced) is not used. */
void cm_bufpool_cleanup(const void *data, size_t len, void *arg);
/*
 * This thread's scratch buffer, grown to at least size bytes (NULL: no memory): valid until the
 * thread's next call, freed with the pool (thread exit, cm_bufpool_release). One user at a time
 * per thread: md_kv.c joins split metadata values into it, and its callers decode them at once.
 */
void *cm_bufpool_scratch(size_t size);
/* Free this thread's idle buffers and its scratch buffer (a thread that is not ending: the main
 * thread). */
void cm_bufpool_release(void);
/* Idle buffers in this thread's pool (tests). */
size_t cm_bufpool_idle(void);

/*
 * The shared pool: one for the process, under a mutex, for large buffers that one thread takes
 * and another gives back, which a thread's pool would strand on the giving thread (a writer's
 * stripe is taken on an event loop and freed on a worker, its compression frames on the workers
 * that compress them; a cell received on the cluster's loop is sent on by a gateway's loop).
 * Such a buffer from malloc costs an mmap, a fault per page and a munmap per
 * body (the server fixes glibc's mmap threshold at 128 KiB: cmd/server.c): a 1 MiB PUT took ~900
 * page faults. A buffer of size bytes, 64-byte aligned, from the shared pool when it holds one of
 * that size, else fresh; NULL: no memory. Give it back with cm_bufpool_put_shared, or free() it.
 * Bounds: CM_BUFPOOL_SHARED_MAX idle buffers of CM_BUFPOOL_SHARED_BYTES in all, as for a thread's
 * pool (a buffer given back to a full pool evicts idle ones of other sizes, or is freed). Sized
 * for 16 uploads of 1 MiB at once through a cluster node, each holding a 1 MiB compression frame,
 * its output buffer and a 1 MiB stripe of 2+2 cells (ob_cluster_write.c's ring): with 16 buffers
 * of 16 MiB the pool caught about 4 bodies' worth and n1 took ~520 page faults per PUT; with
 * 48 and 64 MiB ~85 (2026-12-06). And for the 256 KiB cells a cluster node receives and sends on
 * by reference (ob_read_start_evb), 4 per 1 MiB GET, each held until the client's socket took it:
 * 16 GETs at once through n1 missed the pool for 1 cell in 10 with 48 buffers (25 page faults
 * per GET), and for 1 in a few hundred with 128 (under 1 fault per GET; 2026-12-07). Idle memory
 * the pool may hold: at most the bytes bound.
 */
#define CM_BUFPOOL_SHARED_MAX 128
#define CM_BUFPOOL_SHARED_BYTES (64u << 20)
void *cm_bufpool_take_shared(size_t size);
/* buf (size bytes, from cm_bufpool_take_shared) into the shared pool, or freed; NULL: no-op. */
void cm_bufpool_put_shared(void *buf, size_t size);
/* cm_bufpool_put_shared in the shape of an evbuffer reference's cleanup (arg: the size), for a
 * buffer that an evbuffer carries to another thread (a cell a cluster GET sends by reference). */
void cm_bufpool_cleanup_shared(const void *data, size_t len, void *arg);
/* Free the shared pool's idle buffers (tests; the pool stays usable). */
void cm_bufpool_release_shared(void);
/* Idle buffers in the shared pool (tests). */
size_t cm_bufpool_idle_shared(void);

#endif
