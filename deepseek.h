/* deepseek.h - run, quantize, fine-tune and train transformer language models in one C header.

   Public domain or MIT, at your choice (see LICENSE at the end of this file).

   ============================================================================================
   0. QUICK START
   ============================================================================================

   In exactly one C or C++ file:

       #define DEEPSEEK_IMPLEMENTATION
       #include "deepseek.h"

   and include "deepseek.h" without the macro everywhere else. Link with -lm and -lpthread
   (on Windows nothing extra). No -march flag is needed: SIMD kernels are chosen at run time.

   ============================================================================================
   1. TABLE OF CONTENTS          (search for the anchor, e.g. "// >>gguf")
   ============================================================================================

       >>api          public declarations (types, enums, config structs, functions)
       >>platform     threads + pool, mmap, clock, cpuid, aligned alloc, allocator + logger hooks
       >>util         arena, hash map, JSON read/write, UTF-8, RNG
       >>dtype        f16/bf16/fp8 conversion, quant block formats (ggml layouts)
       >>kernels      scalar reference + AVX2 / AVX-512 / NEON; run-time dispatch
       >>gguf         GGUF v3 read (validating) and write
       >>tokenizer    unicode tables, pre-tokenizers, byte-level BPE, SPM, trainer
       >>model        config, architectures (llama, qwen2)
       >>infer        session, KV cache, forward, sampler, generate, chat templates
       >>train        forward/backward pairs, loss, AdamW, mixed precision, checkpoints

   ============================================================================================
   2. CONFIGURATION MACROS       (define before including the implementation)
   ============================================================================================

       DEEPSEEK_IMPLEMENTATION   emit the implementation in this translation unit
       DS_STATIC                 make every public function static (private copy per TU)
       DS_SHARED                 build or use a shared library (dllexport / dllimport)
       DS_BUILD_SHARED           with DS_SHARED: this TU builds the shared library
       DS_NO_SIMD                use only the scalar reference kernels
       DS_NO_THREADS             no thread pool (everything runs on the calling thread)

   ============================================================================================
   3. CONVENTIONS
   ============================================================================================

   Names      public ds_ / DS_, internal ds__ / DS__.
   Errors     every fallible function returns ds_status (DS_OK = 0, errors negative).
              ds_status_str() names the code; ds_last_error() gives the message of the last
              failure on the calling thread, with context ("gguf: tensor 'blk.3.attn_q.weight':
              data ends at 912, file has 640 bytes"). The library never exits, aborts or prints
              on bad input; it logs only through a logger the host installed.
   Memory     every allocation goes through the allocator set by ds_set_allocator()
              (default malloc/free). Model weights are memory-mapped read-only where possible.
   Config     config structs are zero-initialisable: a 0 field means "the default".
   Threads    ds_pool runs parallel loops; a host with its own job system installs a
              parallel_for hook instead (ds_pool_config.parallel_for). A ds_model is read-only
              and may be shared by threads; a ds_session belongs to one thread at a time.
   Thread safety of the global hooks: ds_set_allocator / ds_set_logger must be called before
              other threads use the library.
*/
#if defined(DEEPSEEK_IMPLEMENTATION) && !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
/* mmap, clock_gettime, pthreads under strict -std=c99: the implementation TU should include
   this header before any system header (or define _POSIX_C_SOURCE itself). */
#define _POSIX_C_SOURCE 200809L
#endif
#ifndef DEEPSEEK_H
#define DEEPSEEK_H

// >>api
#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>

#if defined(DS_STATIC)
#define DS_API static
#elif defined(DS_SHARED) && defined(_WIN32)
#if defined(DS_BUILD_SHARED)
#define DS_API __declspec(dllexport)
#else
#define DS_API __declspec(dllimport)
#endif
#else
#define DS_API extern
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define DS_VERSION_MAJOR 0
#define DS_VERSION_MINOR 1
#define DS_VERSION_PATCH 0

/* ---- status ------------------------------------------------------------------------------ */
typedef enum ds_status {
    DS_OK = 0,
    DS_ERR_INVALID_ARG = -1,   /* a caller passed something impossible (NULL, bad size) */
    DS_ERR_NO_MEMORY = -2,     /* an allocation failed */
    DS_ERR_IO = -3,            /* open / read / write / rename failed */
    DS_ERR_FORMAT = -4,        /* a file is malformed (bad magic, truncated, inconsistent) */
    DS_ERR_UNSUPPORTED = -5,   /* well-formed but not something we can handle */
    DS_ERR_BOUNDS = -6,        /* an offset or size points outside its container */
    DS_ERR_OVERFLOW = -7,      /* a count or size overflows */
    DS_ERR_NOT_FOUND = -8,     /* a named key, tensor or token does not exist */
    DS_ERR_CANCELLED = -9,     /* the host cancelled the operation */
    DS_ERR_STATE = -10,        /* called in the wrong state (e.g. context full) */
    DS_ERR_TYPE = -11          /* a value has another type than expected */
} ds_status;

/* Name of a status code ("DS_ERR_FORMAT"). Never NULL. Thread-safe. */
DS_API const char *ds_status_str(ds_status s);
/* Message of the last failure on this thread ("" if none). Valid until the next failure on
   this thread. Thread-safe (thread-local). */
DS_API const char *ds_last_error(void);
/* Clear the calling thread's message. */
DS_API void ds_clear_error(void);

/* ---- allocator and logger hooks ---------------------------------------------------------- */
typedef struct ds_allocator {
    void *(*alloc)(size_t size, size_t align, void *user); /* align is a power of two <= 4096 */
    void (*free)(void *ptr, void *user);
    void *user;
} ds_allocator;

typedef enum ds_log_level { DS_LOG_ERROR = 0, DS_LOG_WARN = 1, DS_LOG_INFO = 2, DS_LOG_DEBUG = 3 } ds_log_level;
typedef void (*ds_log_fn)(ds_log_level level, const char *msg, void *user);

/* Install a global allocator (NULL restores malloc/free). Call before any other use. */
DS_API void ds_set_allocator(const ds_allocator *a);
/* Install a global logger (NULL: the library prints nothing). Errors are logged at
   DS_LOG_ERROR as they are raised. Call before any other use. */
DS_API void ds_set_logger(ds_log_fn fn, void *user, ds_log_level max_level);
DS_API void *ds_alloc(size_t size);   /* through the installed allocator, 64-byte aligned */
DS_API void ds_free(void *p);

/* ---- platform ---------------------------------------------------------------------------- */
/* Monotonic clock in seconds. */
DS_API double ds_time(void);

/* CPU features found at run time (and honoured by kernel dispatch). */
enum {
    DS_CPU_AVX2 = 1 << 0, DS_CPU_FMA = 1 << 1, DS_CPU_F16C = 1 << 2, DS_CPU_AVX512F = 1 << 3,
    DS_CPU_AVX512BW = 1 << 4, DS_CPU_AVX512VL = 1 << 5, DS_CPU_AVX512VNNI = 1 << 6,
    DS_CPU_AVX512BF16 = 1 << 7, DS_CPU_AVXVNNI = 1 << 8, DS_CPU_NEON = 1 << 9,
    DS_CPU_NEON_DOTPROD = 1 << 10
};
DS_API unsigned ds_cpu_features(void);
/* Restrict the features the kernels may use (mask of DS_CPU_*). Tests use this to compare
   each SIMD path with the scalar reference. Not thread-safe with running kernels. */
DS_API void ds_cpu_set_mask(unsigned mask);

/* A read-only view of a whole file, memory-mapped where possible (read() otherwise). */
typedef struct ds_mapped_file {
    const uint8_t *data;
    size_t size;
    void *impl_;
} ds_mapped_file;
DS_API ds_status ds_map_file(const char *path, ds_mapped_file *out);
DS_API void ds_unmap_file(ds_mapped_file *f);

/* ---- thread pool ------------------------------------------------------------------------- */
/* task(ctx, i, n) is called once for each i in [0, n). */
typedef void (*ds_task_fn)(void *ctx, int i, int n);
/* A host job system: run task(ctx, i, n) for every i in [0, n) and return when all are done. */
typedef void (*ds_parallel_for_fn)(void *host, ds_task_fn task, void *ctx, int n);

typedef struct ds_pool_config {
    int n_threads;                    /* 0: number of online CPUs; 1: no worker threads */
    ds_parallel_for_fn parallel_for;  /* optional: run loops on the host's own job system */
    void *host;                       /* passed to parallel_for */
    int host_threads;                 /* with parallel_for: how many tasks run at once (0: 1) */
} ds_pool_config;
typedef struct ds_pool ds_pool;

DS_API ds_status ds_pool_create(const ds_pool_config *cfg, ds_pool **out);
DS_API void ds_pool_destroy(ds_pool *p);
DS_API int ds_pool_size(const ds_pool *p);  /* how many tasks may run at once */
/* Run task for i in [0, n) on the pool (the calling thread takes part). p may be NULL (runs
   inline). Not re-entrant: one loop at a time per pool. */
DS_API void ds_pool_run(ds_pool *p, ds_task_fn task, void *ctx, int n);

/* ---- dtypes ------------------------------------------------------------------------------ */
/* Tensor element types; the values are ggml's type ids as stored in GGUF files. */
typedef enum ds_type {
    DS_TYPE_F32 = 0, DS_TYPE_F16 = 1, DS_TYPE_Q4_0 = 2, DS_TYPE_Q4_1 = 3,
    DS_TYPE_Q8_0 = 8, DS_TYPE_Q8_1 = 9, DS_TYPE_Q4_K = 12, DS_TYPE_Q6_K = 14,
    DS_TYPE_Q8_K = 15, DS_TYPE_BF16 = 30,
    DS_TYPE_COUNT_ = 40
} ds_type;

// >>api:dtype
/* Elements per block (1 for float types) and bytes per block; 0 for ids we do not know. */
DS_API size_t ds_type_block_elems(ds_type t);
DS_API size_t ds_type_block_bytes(ds_type t);
DS_API const char *ds_type_name(ds_type t);   /* "Q4_1"; "?" for unknown ids */
/* Bytes of n elements of type t: DS_ERR_TYPE for an unknown type, DS_ERR_FORMAT when n is not
   a whole number of blocks, DS_ERR_OVERFLOW when the size does not fit in 63 bits. */
DS_API ds_status ds_type_nbytes(ds_type t, int64_t n, uint64_t *out);

// >>api:kernels

// >>api:gguf

// >>api:tokenizer

// >>api:model
/* The model's shape, shared by inference, training and the GGUF metadata. Each layer names its
   attention kind and feed-forward kind, so swapping one for another is a one-line change. */
#define DS_MAX_LAYERS 256
typedef enum ds_attn_kind { DS_ATTN_DENSE = 0, DS_ATTN_MLA = 1, DS_ATTN_SDA = 2 } ds_attn_kind;
typedef enum ds_ffn_kind { DS_FFN_DENSE = 0, DS_FFN_MOE = 1 } ds_ffn_kind;
typedef enum ds_gating { DS_GATING_SOFTMAX = 0, DS_GATING_SIGMOID = 1 } ds_gating;
typedef struct ds_layer_config {
    ds_attn_kind attn;
    ds_ffn_kind ffn;
} ds_layer_config;

typedef struct ds_model_config {
    char arch[32];        /* "llama", "qwen2", "deepseek2" */
    int n_vocab;
    int n_ctx;            /* context length the model was trained for */
    int n_embd;           /* residual width */
    int n_layer;
    int n_head;
    int n_head_kv;        /* < n_head: grouped-query attention */
    int head_dim;         /* 0: n_embd / n_head */
    int n_ff;             /* dense SwiGLU hidden width */
    float norm_eps;       /* RMSNorm epsilon (0: 1e-5) */
    float rope_base;      /* 0: 10000 */
    int n_rot;            /* rotated dims per head (0: head_dim) */
    int rope_neox;        /* 1: half-split pairs (qwen2), 0: adjacent pairs (llama GGUF) */
    int tied_output;      /* output projection shares token_embd */
    int qkv_bias;         /* qwen2: biases on Q, K, V */
    /* MLA (DS_ATTN_MLA layers) */
    int q_lora_rank;      /* 0: no query compression */
    int kv_lora_rank;
    int qk_nope_dim, qk_rope_dim, v_head_dim;
    /* MoE (DS_FFN_MOE layers) */
    int n_expert, n_expert_used, n_expert_shared, n_ff_expert;
    int n_expert_groups, n_groups_used;   /* group-limited routing (0: off) */
    ds_gating gating;
    float routed_scale;   /* 0: 1 */
    int norm_topk;        /* renormalise the chosen experts' weights */
    ds_layer_config layers[DS_MAX_LAYERS];
} ds_model_config;

// >>api:infer

// >>api:train

#ifdef __cplusplus
}
#endif
#endif /* DEEPSEEK_H */

/* ========================================================================================== */
/*                                     IMPLEMENTATION                                          */
/* ========================================================================================== */
#if defined(DEEPSEEK_IMPLEMENTATION) && !defined(DEEPSEEK_IMPLEMENTATION_DONE_)
#define DEEPSEEK_IMPLEMENTATION_DONE_

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <float.h>
#include <limits.h>
#include <errno.h>

#if defined(_WIN32)
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>
#else
#include <unistd.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#endif
#if !defined(DS_NO_THREADS) && !defined(_WIN32)
#include <pthread.h>
#endif

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
#define DS__X86 1
#if !defined(DS_NO_SIMD) && (defined(__GNUC__) || defined(__clang__))
#define DS__X86_SIMD 1
#include <immintrin.h>
#include <cpuid.h>
#endif
#endif
#if defined(__aarch64__) && !defined(DS_NO_SIMD)
#define DS__NEON 1
#include <arm_neon.h>
#endif

#if defined(__GNUC__) || defined(__clang__)
#define DS__TLS __thread
#define DS__LIKELY(x) __builtin_expect(!!(x), 1)
#define DS__UNLIKELY(x) __builtin_expect(!!(x), 0)
#define DS__FMT(a, b) __attribute__((format(printf, a, b)))
#define DS__MAYBE_UNUSED __attribute__((unused))
#elif defined(_MSC_VER)
#define DS__TLS __declspec(thread)
#define DS__LIKELY(x) (x)
#define DS__UNLIKELY(x) (x)
#define DS__FMT(a, b)
#define DS__MAYBE_UNUSED
#else
#define DS__TLS
#define DS__LIKELY(x) (x)
#define DS__UNLIKELY(x) (x)
#define DS__FMT(a, b)
#define DS__MAYBE_UNUSED
#endif

#define DS__MIN(a, b) ((a) < (b) ? (a) : (b))
#define DS__MAX(a, b) ((a) > (b) ? (a) : (b))
#define DS__CAST(T, x) ((T)(x))   /* a cast that C++ also accepts (void* conversions) */

#ifdef __cplusplus
extern "C" {
#endif

// >>platform

/* ---- errors ------------------------------------------------------------------------------ */
static DS__TLS char ds__errbuf[512];

DS_API const char *ds_status_str(ds_status s) {
    switch (s) {
    case DS_OK: return "DS_OK";
    case DS_ERR_INVALID_ARG: return "DS_ERR_INVALID_ARG";
    case DS_ERR_NO_MEMORY: return "DS_ERR_NO_MEMORY";
    case DS_ERR_IO: return "DS_ERR_IO";
    case DS_ERR_FORMAT: return "DS_ERR_FORMAT";
    case DS_ERR_UNSUPPORTED: return "DS_ERR_UNSUPPORTED";
    case DS_ERR_BOUNDS: return "DS_ERR_BOUNDS";
    case DS_ERR_OVERFLOW: return "DS_ERR_OVERFLOW";
    case DS_ERR_NOT_FOUND: return "DS_ERR_NOT_FOUND";
    case DS_ERR_CANCELLED: return "DS_ERR_CANCELLED";
    case DS_ERR_STATE: return "DS_ERR_STATE";
    case DS_ERR_TYPE: return "DS_ERR_TYPE";
    }
    return "DS_ERR_UNKNOWN";
}

DS_API const char *ds_last_error(void) { return ds__errbuf; }
DS_API void ds_clear_error(void) { ds__errbuf[0] = 0; }

static ds_log_fn ds__log_fn = NULL;
static void *ds__log_user = NULL;
static ds_log_level ds__log_max = DS_LOG_INFO;

DS_API void ds_set_logger(ds_log_fn fn, void *user, ds_log_level max_level) {
    ds__log_fn = fn;
    ds__log_user = user;
    ds__log_max = max_level;
}

static void ds__logv(ds_log_level level, const char *fmt, va_list ap) {
    char buf[1024];
    if (!ds__log_fn || level > ds__log_max) return;
    vsnprintf(buf, sizeof buf, fmt, ap);
    ds__log_fn(level, buf, ds__log_user);
}

static DS__MAYBE_UNUSED void ds__log(ds_log_level level, const char *fmt, ...) DS__FMT(2, 3);
static void ds__log(ds_log_level level, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    ds__logv(level, fmt, ap);
    va_end(ap);
}

/* Record a failure message for ds_last_error() and return the status, so call sites read
   `return ds__fail(DS_ERR_FORMAT, "gguf: bad magic %08x", m);` */
static ds_status ds__fail(ds_status s, const char *fmt, ...) DS__FMT(2, 3);
static ds_status ds__fail(ds_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ds__errbuf, sizeof ds__errbuf, fmt, ap);
    va_end(ap);
    ds__log(DS_LOG_ERROR, "%s", ds__errbuf);
    return s;
}

/* ---- allocator --------------------------------------------------------------------------- */
static void *ds__default_alloc(size_t size, size_t align, void *user) {
    void *raw, *p;
    (void)user;
    /* over-allocate and keep the raw pointer just below the aligned block (portable C99) */
    if (size > SIZE_MAX - align - sizeof(void *)) return NULL;
    raw = malloc(size + align + sizeof(void *));
    if (!raw) return NULL;
    p = (void *)(((uintptr_t)raw + sizeof(void *) + align - 1) & ~(uintptr_t)(align - 1));
    ((void **)p)[-1] = raw;
    return p;
}
static void ds__default_free(void *p, void *user) {
    (void)user;
    if (p) free(((void **)p)[-1]);
}
static ds_allocator ds__allocator = {ds__default_alloc, ds__default_free, NULL};

DS_API void ds_set_allocator(const ds_allocator *a) {
    if (a && a->alloc && a->free) ds__allocator = *a;
    else {
        ds__allocator.alloc = ds__default_alloc;
        ds__allocator.free = ds__default_free;
        ds__allocator.user = NULL;
    }
}

static void *ds__alloc_aligned(size_t size, size_t align) {
    return ds__allocator.alloc(size ? size : 1, align, ds__allocator.user);
}
DS_API void *ds_alloc(size_t size) { return ds__alloc_aligned(size, 64); }
DS_API void ds_free(void *p) {
    if (p) ds__allocator.free(p, ds__allocator.user);
}
/* zeroed, with overflow-checked n * size */
static void *ds__calloc(size_t n, size_t size) {
    void *p;
    if (size && n > SIZE_MAX / size) return NULL;
    p = ds_alloc(n * size);
    if (p) memset(p, 0, n * size);
    return p;
}
static DS__MAYBE_UNUSED char *ds__strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = DS__CAST(char *, ds_alloc(n));
    if (d) memcpy(d, s, n);
    return d;
}

/* ---- clock ------------------------------------------------------------------------------- */
DS_API double ds_time(void) {
#if defined(_WIN32)
    LARGE_INTEGER f, c;
    QueryPerformanceFrequency(&f);
    QueryPerformanceCounter(&c);
    return (double)c.QuadPart / (double)f.QuadPart;
#else
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
#endif
}

/* ---- cpuid ------------------------------------------------------------------------------- */
static unsigned ds__cpu_detected = 0, ds__cpu_mask = ~0u;
static int ds__cpu_done = 0;

static unsigned ds__cpu_detect(void) {
    unsigned f = 0;
#if defined(DS__X86_SIMD)
    unsigned a, b, c, d, xcr0 = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    if (c & (1u << 27)) { /* OSXSAVE: the OS saves the vector registers we may use */
        unsigned lo, hi;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        xcr0 = lo;
        (void)hi;
    }
    if ((xcr0 & 6) != 6) return 0;
    if (c & (1u << 12)) f |= DS_CPU_FMA;
    if (c & (1u << 29)) f |= DS_CPU_F16C;
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
        if (b & (1u << 5)) f |= DS_CPU_AVX2;
        if ((xcr0 & 0xe0) == 0xe0) {
            if (b & (1u << 16)) f |= DS_CPU_AVX512F;
            if (b & (1u << 30)) f |= DS_CPU_AVX512BW;
            if (b & (1u << 31)) f |= DS_CPU_AVX512VL;
            if (c & (1u << 11)) f |= DS_CPU_AVX512VNNI;
        }
    }
    if (__get_cpuid_count(7, 1, &a, &b, &c, &d)) {
        if ((a & (1u << 5)) && (f & DS_CPU_AVX512F)) f |= DS_CPU_AVX512BF16;
        if (a & (1u << 4)) f |= DS_CPU_AVXVNNI;
    }
#elif defined(DS__NEON)
    f |= DS_CPU_NEON;
#if defined(__ARM_FEATURE_DOTPROD)
    f |= DS_CPU_NEON_DOTPROD;
#endif
#endif
    return f;
}

DS_API unsigned ds_cpu_features(void) {
    if (!ds__cpu_done) {
        ds__cpu_detected = ds__cpu_detect();
        ds__cpu_done = 1;
    }
    return ds__cpu_detected & ds__cpu_mask;
}
DS_API void ds_cpu_set_mask(unsigned mask) { ds__cpu_mask = mask; }

/* ---- mapped files ------------------------------------------------------------------------ */
DS_API ds_status ds_map_file(const char *path, ds_mapped_file *out) {
    if (!path || !out) return ds__fail(DS_ERR_INVALID_ARG, "map_file: NULL argument");
    memset(out, 0, sizeof *out);
#if defined(_WIN32)
    {
        HANDLE fh, mh;
        LARGE_INTEGER sz;
        void *p;
        fh = CreateFileA(path, GENERIC_READ, FILE_SHARE_READ, NULL, OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL);
        if (fh == INVALID_HANDLE_VALUE) return ds__fail(DS_ERR_IO, "%s: cannot open", path);
        if (!GetFileSizeEx(fh, &sz)) {
            CloseHandle(fh);
            return ds__fail(DS_ERR_IO, "%s: cannot stat", path);
        }
        if (sz.QuadPart == 0) {
            CloseHandle(fh);
            out->data = (const uint8_t *)"";
            return DS_OK;
        }
        mh = CreateFileMappingA(fh, NULL, PAGE_READONLY, 0, 0, NULL);
        CloseHandle(fh);
        if (!mh) return ds__fail(DS_ERR_IO, "%s: cannot map", path);
        p = MapViewOfFile(mh, FILE_MAP_READ, 0, 0, 0);
        CloseHandle(mh);
        if (!p) return ds__fail(DS_ERR_IO, "%s: cannot map", path);
        out->data = (const uint8_t *)p;
        out->size = (size_t)sz.QuadPart;
        out->impl_ = p;
        return DS_OK;
    }
#else
    {
        struct stat st;
        int fd = open(path, O_RDONLY);
        void *p;
        if (fd < 0) return ds__fail(DS_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
            close(fd);
            return ds__fail(DS_ERR_IO, "%s: not a regular file", path);
        }
        out->size = (size_t)st.st_size;
        if (out->size == 0) {
            close(fd);
            out->data = (const uint8_t *)"";
            return DS_OK;
        }
        p = mmap(NULL, out->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p != MAP_FAILED) {
            close(fd);
            out->data = (const uint8_t *)p;
            out->impl_ = p;
            return DS_OK;
        }
        { /* read() fallback: the buffer is ours, marked by impl_ == NULL */
            uint8_t *buf = DS__CAST(uint8_t *, ds_alloc(out->size));
            size_t got = 0;
            if (!buf) {
                close(fd);
                return ds__fail(DS_ERR_NO_MEMORY, "%s: cannot allocate %zu bytes", path, out->size);
            }
            while (got < out->size) {
                ssize_t r = read(fd, buf + got, out->size - got);
                if (r <= 0) {
                    if (r < 0 && errno == EINTR) continue;
                    close(fd);
                    ds_free(buf);
                    return ds__fail(DS_ERR_IO, "%s: read failed", path);
                }
                got += (size_t)r;
            }
            close(fd);
            out->data = buf;
            return DS_OK;
        }
    }
#endif
}

DS_API void ds_unmap_file(ds_mapped_file *f) {
    if (!f || !f->data) return;
    if (f->size) {
#if defined(_WIN32)
        if (f->impl_) UnmapViewOfFile(f->impl_);
#else
        if (f->impl_) munmap(f->impl_, f->size);
        else ds_free((void *)f->data);
#endif
    }
    memset(f, 0, sizeof *f);
}

/* ---- thread pool ------------------------------------------------------------------------- */
/* Every worker takes part in every loop and checks out when the loop's tasks run dry; the
   caller returns only when all have checked out, so no worker can touch a loop's fields after
   the next loop starts writing them. Workers spin briefly on a generation counter before
   sleeping on a condition variable: a decode step runs hundreds of short parallel loops, and
   a futex wake per loop would cost more than the loop itself. Tasks are claimed from a shared
   atomic counter, so uneven tasks balance themselves. */
#define DS__ATOMIC_LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define DS__ATOMIC_STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define DS__ATOMIC_ADD(p, v) __atomic_fetch_add((p), (v), __ATOMIC_ACQ_REL)

static void ds__cpu_relax(void) {
#if defined(DS__X86_SIMD)
    _mm_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

struct ds_pool {
    int n_threads;
    ds_parallel_for_fn host_for;
    void *host;
    int host_threads;
#if !defined(DS_NO_THREADS) && !defined(_WIN32)
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int sleeping;
#endif
    /* the current loop: written by the caller only while no worker is inside a loop */
    ds_task_fn task;
    void *ctx;
    int n;
    int next;          /* next task index to claim (atomic) */
    int checked_out;   /* workers that finished the current loop (atomic) */
    unsigned gen;      /* bumped once per loop (atomic) */
    int quit;
};

static void ds__pool_work(ds_pool *p) {
    for (;;) {
        int i = DS__ATOMIC_ADD(&p->next, 1);
        if (i >= p->n) break;
        p->task(p->ctx, i, p->n);
    }
}

#if !defined(DS_NO_THREADS) && !defined(_WIN32)
static void *ds__pool_main(void *arg) {
    ds_pool *p = (ds_pool *)arg;
    unsigned seen = 0;
    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = DS__ATOMIC_LOAD(&p->gen)) == seen && !DS__ATOMIC_LOAD(&p->quit)) {
            if (++spins < 20000) {
                ds__cpu_relax();
                continue;
            }
            pthread_mutex_lock(&p->mu);
            p->sleeping++;
            while (DS__ATOMIC_LOAD(&p->gen) == seen && !DS__ATOMIC_LOAD(&p->quit)) pthread_cond_wait(&p->cv, &p->mu);
            p->sleeping--;
            pthread_mutex_unlock(&p->mu);
        }
        if (DS__ATOMIC_LOAD(&p->quit)) return NULL;
        seen = g;
        ds__pool_work(p);
        DS__ATOMIC_ADD(&p->checked_out, 1);
    }
}
#endif

static int ds__online_cpus(void) {
#if defined(_WIN32)
    SYSTEM_INFO si;
    GetSystemInfo(&si);
    return (int)si.dwNumberOfProcessors;
#else
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
#endif
}

DS_API ds_status ds_pool_create(const ds_pool_config *cfg, ds_pool **out) {
    ds_pool_config c;
    ds_pool *p;
    if (!out) return ds__fail(DS_ERR_INVALID_ARG, "pool: NULL out");
    *out = NULL;
    memset(&c, 0, sizeof c);
    if (cfg) c = *cfg;
    p = DS__CAST(ds_pool *, ds__calloc(1, sizeof *p));
    if (!p) return ds__fail(DS_ERR_NO_MEMORY, "pool: out of memory");
    if (c.parallel_for) {
        p->host_for = c.parallel_for;
        p->host = c.host;
        p->host_threads = c.host_threads > 0 ? c.host_threads : 1;
        p->n_threads = p->host_threads;
        *out = p;
        return DS_OK;
    }
    p->n_threads = c.n_threads > 0 ? c.n_threads : ds__online_cpus();
    if (p->n_threads > 512) p->n_threads = 512;
#if defined(DS_NO_THREADS) || defined(_WIN32)
    p->n_threads = 1;
#else
    if (p->n_threads > 1) {
        int i;
        pthread_mutex_init(&p->mu, NULL);
        pthread_cond_init(&p->cv, NULL);
        p->threads = DS__CAST(pthread_t *, ds__calloc((size_t)p->n_threads - 1, sizeof(pthread_t)));
        if (!p->threads) {
            ds_free(p);
            return ds__fail(DS_ERR_NO_MEMORY, "pool: out of memory");
        }
        for (i = 0; i < p->n_threads - 1; i++) {
            if (pthread_create(&p->threads[i], NULL, ds__pool_main, p) != 0) {
                p->n_threads = i + 1;
                break;
            }
        }
    }
#endif
    *out = p;
    return DS_OK;
}

DS_API void ds_pool_destroy(ds_pool *p) {
    if (!p) return;
#if !defined(DS_NO_THREADS) && !defined(_WIN32)
    if (p->threads) {
        int i;
        pthread_mutex_lock(&p->mu);
        DS__ATOMIC_STORE(&p->quit, 1);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
        for (i = 0; i < p->n_threads - 1; i++) pthread_join(p->threads[i], NULL);
        ds_free(p->threads);
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->cv);
    }
#endif
    ds_free(p);
}

DS_API int ds_pool_size(const ds_pool *p) { return p ? p->n_threads : 1; }

DS_API void ds_pool_run(ds_pool *p, ds_task_fn task, void *ctx, int n) {
    int i;
    if (n <= 0) return;
    if (p && p->host_for) {
        p->host_for(p->host, task, ctx, n);
        return;
    }
    if (!p || p->n_threads <= 1 || n == 1) {
        for (i = 0; i < n; i++) task(ctx, i, n);
        return;
    }
#if !defined(DS_NO_THREADS) && !defined(_WIN32)
    p->task = task;
    p->ctx = ctx;
    p->n = n;
    DS__ATOMIC_STORE(&p->next, 0);
    DS__ATOMIC_STORE(&p->checked_out, 0);
    pthread_mutex_lock(&p->mu);
    DS__ATOMIC_ADD(&p->gen, 1u);
    if (p->sleeping > 0) pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    ds__pool_work(p);
    while (DS__ATOMIC_LOAD(&p->checked_out) < p->n_threads - 1) ds__cpu_relax();
#endif
}

// >>util

// >>dtype
typedef struct ds__type_traits {
    const char *name;
    uint16_t block_elems, block_bytes;
} ds__type_traits;

/* ggml's block layouts: Q4_0 {f16 d; u8 qs[16]}, Q4_1 {f16 d, m; u8 qs[16]}, Q8_0 {f16 d;
   i8 qs[32]}, Q8_1 {f16 d, s; i8 qs[32]}, Q4_K {f16 d, dmin; u8 scales[12]; u8 qs[128]},
   Q6_K {u8 ql[128], qh[64]; i8 scales[16]; f16 d}, Q8_K {f32 d; i8 qs[256]; i16 bsums[16]} */
static ds__type_traits ds__type_info(ds_type t) {
    ds__type_traits r = {"?", 0, 0};
    switch (t) {
    case DS_TYPE_F32: r.name = "F32"; r.block_elems = 1; r.block_bytes = 4; break;
    case DS_TYPE_F16: r.name = "F16"; r.block_elems = 1; r.block_bytes = 2; break;
    case DS_TYPE_BF16: r.name = "BF16"; r.block_elems = 1; r.block_bytes = 2; break;
    case DS_TYPE_Q4_0: r.name = "Q4_0"; r.block_elems = 32; r.block_bytes = 18; break;
    case DS_TYPE_Q4_1: r.name = "Q4_1"; r.block_elems = 32; r.block_bytes = 20; break;
    case DS_TYPE_Q8_0: r.name = "Q8_0"; r.block_elems = 32; r.block_bytes = 34; break;
    case DS_TYPE_Q8_1: r.name = "Q8_1"; r.block_elems = 32; r.block_bytes = 36; break;
    case DS_TYPE_Q4_K: r.name = "Q4_K"; r.block_elems = 256; r.block_bytes = 144; break;
    case DS_TYPE_Q6_K: r.name = "Q6_K"; r.block_elems = 256; r.block_bytes = 210; break;
    case DS_TYPE_Q8_K: r.name = "Q8_K"; r.block_elems = 256; r.block_bytes = 292; break;
    case DS_TYPE_COUNT_: break;
    }
    return r;
}
DS_API size_t ds_type_block_elems(ds_type t) { return ds__type_info(t).block_elems; }
DS_API size_t ds_type_block_bytes(ds_type t) { return ds__type_info(t).block_bytes; }
DS_API const char *ds_type_name(ds_type t) { return ds__type_info(t).name; }
DS_API ds_status ds_type_nbytes(ds_type t, int64_t n, uint64_t *out) {
    ds__type_traits tr = ds__type_info(t);
    uint64_t blocks;
    if (!tr.block_elems) return ds__fail(DS_ERR_TYPE, "unknown tensor type id %d", (int)t);
    if (n < 0 || (uint64_t)n % tr.block_elems) return ds__fail(DS_ERR_FORMAT, "%lld elements are not whole %s blocks of %u", (long long)n, tr.name, (unsigned)tr.block_elems);
    blocks = (uint64_t)n / tr.block_elems;
    if (blocks > (UINT64_C(1) << 62) / tr.block_bytes) return ds__fail(DS_ERR_OVERFLOW, "%lld %s elements overflow a size", (long long)n, tr.name);
    *out = blocks * tr.block_bytes;
    return DS_OK;
}

// >>kernels

// >>gguf

// >>tokenizer

// >>model

// >>infer

// >>train

#ifdef __cplusplus
}
#endif
#endif /* DEEPSEEK_IMPLEMENTATION */

/*
------------------------------------------------------------------------------------------------
LICENSE: this software is available under either of two licenses, at your choice.
A - MIT License. Copyright (c) 2026 the deepseek.h authors.
Permission is hereby granted, free of charge, to any person obtaining a copy of this software
and associated documentation files (the "Software"), to deal in the Software without
restriction, including without limitation the rights to use, copy, modify, merge, publish,
distribute, sublicense, and/or sell copies of the Software, and to permit persons to whom the
Software is furnished to do so, subject to the following conditions: The above copyright notice
and this permission notice shall be included in all copies or substantial portions of the
Software. THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED.
B - Public Domain (www.unlicense.org). Anyone is free to copy, modify, publish, use, compile,
sell, or distribute this software, for any purpose, commercial or non-commercial, and by any
means.
------------------------------------------------------------------------------------------------
*/
