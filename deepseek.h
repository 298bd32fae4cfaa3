/* deepseek.h - run, quantize and train transformer language models in one C header.

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
       >>util         growable byte buffer, JSON read/write, UTF-8
       >>dtype        f16/bf16/fp8 conversion, quant block formats (ggml layouts), reference and
                      importance-weighted quantizers
       >>kernels      scalar reference + AVX2 / AVX-512 / NEON
       >>backend      the op layer: ds__ops, the CPU and reference backends, matmul / GEMM drivers
       >>gguf         GGUF v2/v3 read (validating) and v3 write
       >>safetensors  safetensors read (validating) and write
       >>quant        the model quantizer (ds_quantize_model): llama.cpp's per-tensor rules;
                      importance matrices (ds_imatrix: collect, llama.cpp's GGUF format, load)
       >>tokenizer    unicode tables, pre-tokenizers, byte-level BPE, SPM, trainer
       >>model        config, architectures (llama, qwen2)
       >>deepseek     deepseek2: MLA (latent KV cache, absorbed decode, YaRN), DeepSeekMoE
       >>infer        session, KV cache, forward (matmul observer), sampler, generate, chat templates
       >>sda          sparse dynamic attention: gate block-summary tree, hierarchical top-k,
                      block-sparse attention over the f16 cache, the SDA layer (config, GGUF
                      keys, gate tensors, session state); then the forward's layer walk
       >>lora         LoRA adapters: llama.cpp GGUF and PEFT formats, applied in a session's
                      matmuls, merged into a model file
       >>train        forward/backward pairs, loss, AdamW, mixed precision, checkpoints; the
                      matmul op over trainable or frozen (quantized) weights with LoRA pairs
       >>train:deepseek  MLA and MoE forward/backward, bias balancing, balance loss
       >>finetune     LoRA / QLoRA training: pair layout and init, adapter GGUF, JSONL
                      fine-tuning data, packing, ds_finetune

   ============================================================================================
   2. CONFIGURATION MACROS       (define before including the implementation)
   ============================================================================================

       DEEPSEEK_IMPLEMENTATION   emit the implementation in this translation unit
       DS_STATIC                 make every public function static (private copy per TU)
       DS_SHARED                 build or use a shared library (dllexport / dllimport)
       DS_BUILD_SHARED           with DS_SHARED: this TU builds the shared library
       DS_NO_SIMD                use only the scalar reference kernels
       DS_NO_THREADS             no thread pool (everything runs on the calling thread)
     Feature exclusion (a program that only runs a model compiles less; define them the same
     way wherever deepseek.h is included, since they also remove declarations):
       DS_NO_TRAIN               no trainer: ds_trainer_*, token shards, checkpoints, the
                                 training GEMM and AdamW, LoRA fine-tuning (ds_model_config_parse
                                 stays)
       DS_NO_TOKENIZER_TRAIN     no BPE trainer (ds_bpe_train)
       DS_NO_DEEPSEEK2           no MLA or MoE layers, in inference (the deepseek2 loader:
                                 such files are refused) and in training (such configs are
                                 refused)

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

   ============================================================================================
   4. DESIGN NOTES               (where the code departs from the obvious, and why)
   ============================================================================================

   Thread pool   A parallel loop is one 64-bit ticket (generation | count | next index) that
                 threads claim by compare-and-swap. A late worker fails its claim instead of
                 touching the next loop, so the caller returns as soon as the tasks are done and
                 never waits for a descheduled worker: on a busy machine decoding degrades to
                 one thread's speed instead of stalling on every one of its ~200 loops a token.
   llama.cpp's   Logits equal llama.cpp's bit for bit on the Llama path (SmolLM2 Q4_1: all
   numerics      2,048 test positions, every logit). With 8-bit activations a last-bit
                 difference anywhere moves a small model's logits by ~0.2 rms (llama.cpp's own
                 two attention paths disagree on ~4% of SmolLM2's top-1 tokens), so anything
                 short of identical arithmetic stays at that floor. Every kernel (scalar, AVX2,
                 AVX-512, NEON) therefore computes in the float order of llama.cpp's x86
                 AVX-512 build, one canonical order whatever the CPU: activations quantized with
                 127 / amax and halves to even; integer-dot blocks summed in 8 lanes of 4 terms
                 by FMA, reduced as a vector unit halves them, Q4_1's m * s terms in a separate
                 fused chain; RMSNorm's squares summed in double, scale 1.0f / sqrtf(mean + eps);
                 RoPE's two products with llama.cpp's contraction; its polynomial e^x in softmax
                 and SiLU, the softmax sum in double over chunks of 16; the f16 attention
                 products in 16 lanes for a batch and 4 x 16 for a single token, queries and
                 probabilities rounded to f16 first. tests/test_smollm2.c asserts >= 99.5% top-1
                 and identical greedy text; tests/test_kernels.c and test_infer.c that every
                 instruction set gives the same bits. The K-quant and float-weight matmuls
                 keep their own (close) order.
   Checkpoints   Training checkpoints are GGUF files (weights, AdamW moments, RNG, data cursor,
                 loss-scaler state as tensors and keys), written through the same atomic writer
                 as models, so one validating reader serves models, checkpoints and fuzzing.
                 The validating reader checks structure, not bytes: a flipped bit inside a
                 weight parses fine. So the files training writes carry an XXH64 of their whole
                 data section in an ordinary key (llama.cpp ignores it), checked on resume and
                 model load; XXH64 because it runs near memory speed, a whole-file pass being
                 the cost of the check.
   Op layer      Model and trainer code call operations, never kernels: a ds__ops table of
                 function pointers (matmul tiles per weight type, norms, RoPE, softmax, SwiGLU,
                 f16 rows, attention products, GEMM register tiles, AdamW) that a backend fills
                 once when a session or trainer is created (>>backend). DS_BACKEND_CPU takes the
                 best kernel the CPU (and the test mask) allows, DS_BACKEND_REF the scalar
                 references; tests run the same model code on both. One pointer call per op per
                 row or tile, as the old per-call dispatch did, so speed is unchanged.
   LoRA          An adapter's update is never folded into the weights at run time: the session's
                 matmul by an adapted weight adds s * (alpha / r) * B (A x) beside the base
                 product (r dots for A x, then r axpys along B stored transposed), so a quantized
                 base stays quantized in memory, sessions of one model run different adapters,
                 and B = 0 or s = 0 leaves the base's bits. Hugging Face orders each head's rows
                 of a llama's q / k projections (half, i), GGUF (i, half): converting a PEFT
                 adapter permutes B's rows, which needs the base's head counts.
   MLA cache     The MLA latent cache is f32 (dense attention's is f16): the absorbed decode
                 path multiplies it straight into the latent-space scores.
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
/* Restrict the features the kernels may use (mask of DS_CPU_*): sessions and trainers created
   afterwards choose their kernels within it. Tests use this to compare each SIMD path with the
   scalar reference. Not thread-safe with sessions or trainers being created. */
DS_API void ds_cpu_set_mask(unsigned mask);

/* A read-only view of a whole file, memory-mapped where possible (read() otherwise). */
typedef struct ds_mapped_file {
    const uint8_t *data;
    size_t size;
    void *impl_;
} ds_mapped_file;
DS_API ds_status ds_map_file(const char *path, ds_mapped_file *out);
DS_API void ds_unmap_file(ds_mapped_file *f);
/* XXH64 of data[0, n) (xxHash's 64-bit hash, the same value as its reference library). */
DS_API uint64_t ds_xxh64(const void *data, size_t n, uint64_t seed);

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
DS_API void ds_pool_free(ds_pool *p);
DS_API int ds_pool_size(const ds_pool *p);  /* how many tasks may run at once */
/* Run task for i in [0, n) on the pool (the calling thread takes part). p may be NULL (runs
   inline). Not re-entrant: one loop at a time per pool. */
DS_API void ds_pool_run(ds_pool *p, ds_task_fn task, void *ctx, int n);

/* ---- dtypes ------------------------------------------------------------------------------ */
/* Tensor element types; the values are ggml's type ids as stored in GGUF files. */
typedef enum ds_type {
    DS_TYPE_F32 = 0, DS_TYPE_F16 = 1, DS_TYPE_Q4_0 = 2, DS_TYPE_Q4_1 = 3, DS_TYPE_Q5_0 = 6, DS_TYPE_Q5_1 = 7,
    DS_TYPE_Q8_0 = 8, DS_TYPE_Q8_1 = 9, DS_TYPE_Q4_K = 12, DS_TYPE_Q5_K = 13, DS_TYPE_Q6_K = 14,
    DS_TYPE_Q8_K = 15, DS_TYPE_IQ4_NL = 20, DS_TYPE_BF16 = 30,
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
/* Where a session or trainer runs its operations (ds_session_config.backend,
   ds_train_config.backend). */
typedef enum ds_backend {
    DS_BACKEND_CPU = 0,   /* the fastest kernels this CPU has (and ds_cpu_set_mask allows) */
    DS_BACKEND_REF = 1    /* the scalar reference kernels only: slow, the ground truth in tests */
} ds_backend;

// >>api:gguf
/* GGUF v2/v3 files (little-endian), read with full validation and written atomically.
   ds_gguf_open() maps the file and checks everything before returning: magic, version,
   counts against the bytes left, string and array lengths, value and tensor type ids, n_dims
   <= 4, element counts and byte sizes without overflow, general.alignment (u32, power of two,
   default 32), every tensor offset aligned and every tensor inside the file, no two tensors
   overlapping, no duplicate keys or tensor names. Any violation returns a DS_ERR_* with a
   message naming the key or tensor and the offsets. Everything returned points into the
   file and lives until ds_gguf_free(). A ds_gguf is read-only: threads may share it.
   Errors: DS_ERR_FORMAT (malformed or inconsistent, a fixed-size field cut off),
   DS_ERR_BOUNDS (a length, count or offset reaches past the end of the file),
   DS_ERR_OVERFLOW (a size computation overflows), DS_ERR_TYPE (unknown type id),
   DS_ERR_UNSUPPORTED (version 1 or unknown, big-endian, nested arrays). */
typedef enum ds_gguf_type {
    DS_GGUF_U8 = 0, DS_GGUF_I8 = 1, DS_GGUF_U16 = 2, DS_GGUF_I16 = 3, DS_GGUF_U32 = 4,
    DS_GGUF_I32 = 5, DS_GGUF_F32 = 6, DS_GGUF_BOOL = 7, DS_GGUF_STRING = 8, DS_GGUF_ARRAY = 9,
    DS_GGUF_U64 = 10, DS_GGUF_I64 = 11, DS_GGUF_F64 = 12
} ds_gguf_type;
typedef struct ds_str { const char *ptr; size_t len; } ds_str;   /* not NUL-terminated; points into the file */
typedef struct ds_gguf_kv {
    ds_str key;
    ds_gguf_type type;
    ds_gguf_type arr_type;      /* for DS_GGUF_ARRAY: element type and count */
    uint64_t arr_len;
    /* the raw little-endian value bytes in the file (may be unaligned): a scalar itself; for a
       string its u64 length then its bytes; for an array its first element */
    const uint8_t *data;
} ds_gguf_kv;
typedef struct ds_gguf_tensor {
    ds_str name;
    ds_type type;
    int n_dims;
    int64_t ne[4];          /* ne[0] is the contiguous (row) dimension, unused dims 1 */
    uint64_t offset;        /* from the start of the data section */
    const void *data;       /* inside the mapped file */
    uint64_t nbytes;
} ds_gguf_tensor;
typedef struct ds_gguf ds_gguf;

DS_API ds_status ds_gguf_open(const char *path, ds_gguf **out);            /* mmaps (ds_map_file) */
DS_API ds_status ds_gguf_open_memory(const void *data, size_t size, ds_gguf **out); /* data must outlive g */
DS_API void ds_gguf_free(ds_gguf *g);
DS_API uint32_t ds_gguf_version(const ds_gguf *g);
DS_API uint32_t ds_gguf_alignment(const ds_gguf *g);
DS_API uint64_t ds_gguf_data_offset(const ds_gguf *g);    /* where the data section starts */
DS_API uint64_t ds_gguf_file_size(const ds_gguf *g);
DS_API const char *ds_gguf_type_name(ds_gguf_type t);     /* "u32", "string"; "?" if unknown */
DS_API int64_t ds_gguf_n_kv(const ds_gguf *g);
DS_API const ds_gguf_kv *ds_gguf_kv_at(const ds_gguf *g, int64_t i);     /* NULL out of range */
DS_API const ds_gguf_kv *ds_gguf_find(const ds_gguf *g, const char *key);   /* NULL if absent; hashed */
/* typed getters: DS_ERR_NOT_FOUND if absent, DS_ERR_TYPE if the stored type does not convert
   (integers convert between widths when the value fits; f32 accepts f32/f64) */
DS_API ds_status ds_gguf_get_u32(const ds_gguf *g, const char *key, uint32_t *out);
DS_API ds_status ds_gguf_get_i32(const ds_gguf *g, const char *key, int32_t *out);
DS_API ds_status ds_gguf_get_u64(const ds_gguf *g, const char *key, uint64_t *out);
DS_API ds_status ds_gguf_get_i64(const ds_gguf *g, const char *key, int64_t *out);
DS_API ds_status ds_gguf_get_f32(const ds_gguf *g, const char *key, float *out);
DS_API ds_status ds_gguf_get_f64(const ds_gguf *g, const char *key, double *out);
DS_API ds_status ds_gguf_get_bool(const ds_gguf *g, const char *key, int *out);
DS_API ds_status ds_gguf_get_str(const ds_gguf *g, const char *key, ds_str *out);
/* Array: element type, count and pointer to the packed little-endian elements (unaligned);
   for a string array data is the first encoded string (read them with ds_gguf_get_arr_str).
   Any of elem, n, data may be NULL. */
DS_API ds_status ds_gguf_get_arr(const ds_gguf *g, const char *key, ds_gguf_type *elem, uint64_t *n, const void **data);
/* String array: fills out[0..n); n must equal the array length (DS_ERR_INVALID_ARG otherwise). */
DS_API ds_status ds_gguf_get_arr_str(const ds_gguf *g, const char *key, ds_str *out, uint64_t n);
DS_API int64_t ds_gguf_n_tensors(const ds_gguf *g);
DS_API const ds_gguf_tensor *ds_gguf_tensor_at(const ds_gguf *g, int64_t i);  /* file order */
DS_API const ds_gguf_tensor *ds_gguf_find_tensor(const ds_gguf *g, const char *name);  /* hashed, O(1) */

/* Writer: collects KVs (copied) and tensors (referenced), then writes a GGUF v3 file. Setting a
   key twice replaces its value; KVs keep the order they were first set in. Tensors are laid
   out in the order added, each at a multiple of general.alignment (set it as a u32 power of
   two to change the default 32). Not thread-safe. */
typedef struct ds_gguf_writer ds_gguf_writer;
DS_API ds_status ds_gguf_writer_create(ds_gguf_writer **out);
DS_API void ds_gguf_writer_free(ds_gguf_writer *w);
DS_API ds_status ds_gguf_writer_set_u32(ds_gguf_writer *w, const char *key, uint32_t v);
DS_API ds_status ds_gguf_writer_set_i32(ds_gguf_writer *w, const char *key, int32_t v);
DS_API ds_status ds_gguf_writer_set_u64(ds_gguf_writer *w, const char *key, uint64_t v);
DS_API ds_status ds_gguf_writer_set_i64(ds_gguf_writer *w, const char *key, int64_t v);
DS_API ds_status ds_gguf_writer_set_f32(ds_gguf_writer *w, const char *key, float v);
DS_API ds_status ds_gguf_writer_set_f64(ds_gguf_writer *w, const char *key, double v);
DS_API ds_status ds_gguf_writer_set_bool(ds_gguf_writer *w, const char *key, int v);
DS_API ds_status ds_gguf_writer_set_str(ds_gguf_writer *w, const char *key, const char *v);
/* any scalar value type by id (u8, i16, ...): value holds its little-endian bytes */
DS_API ds_status ds_gguf_writer_set_scalar(ds_gguf_writer *w, const char *key, ds_gguf_type type, const void *value);
/* numeric array of n elements of type elem, packed (bools: one byte each) */
DS_API ds_status ds_gguf_writer_set_arr(ds_gguf_writer *w, const char *key, ds_gguf_type elem, const void *data, uint64_t n);
DS_API ds_status ds_gguf_writer_set_arr_str(ds_gguf_writer *w, const char *key, const char *const *strs, uint64_t n);
/* Copies every KV of g (replacing keys already set): for converters and checkpoints. */
DS_API ds_status ds_gguf_writer_copy_kv(ds_gguf_writer *w, const ds_gguf *g);
/* ne[0] is the contiguous dimension and a whole number of blocks of type; n_dims in 1..4.
   data is referenced, not copied: it must stay valid until ds_gguf_writer_write returns. */
DS_API ds_status ds_gguf_writer_add_tensor(ds_gguf_writer *w, const char *name, ds_type type, int n_dims, const int64_t *ne, const void *data);
/* atomic: writes PATH.tmp, fsyncs, renames over PATH (and fsyncs the folder); on failure
   (a full disk, say) PATH is untouched and PATH.tmp removed */
DS_API ds_status ds_gguf_writer_write(ds_gguf_writer *w, const char *path);
/* Data checksum: XXH64 (seed 0) of the whole data section, from ds_gguf_data_offset to the end
   of the file, padding included, kept as an ordinary u64 key (llama.cpp and the gguf package
   read past it). The files training writes carry it. */
#define DS_GGUF_CHECKSUM_KEY "deepseek_h.data_xxh64"
/* on != 0: ds_gguf_writer_write adds DS_GGUF_CHECKSUM_KEY */
DS_API void ds_gguf_writer_set_checksum(ds_gguf_writer *w, int on);
/* Checks DS_GGUF_CHECKSUM_KEY where the file has one (reading its whole data section): DS_OK
   when it matches or is absent (*present, which may be NULL, says which), DS_ERR_FORMAT when
   the data changed after it was written. */
DS_API ds_status ds_gguf_verify_checksum(const ds_gguf *g, int *present);

// >>api:safetensors
/* Safetensors files (Hugging Face): an 8-byte little-endian header length N, N bytes of JSON
   {"NAME": {"dtype": "F32", "shape": [..], "data_offsets": [BEGIN, END]}, ...,
   "__metadata__": {"KEY": "VALUE", ...}}, then the data section the offsets count from.
   ds_safetensors_open() checks everything before returning: N inside the file and at most
   100 MB, the JSON well-formed (UTF-8, RFC 8259), each entry an object with a known dtype, at
   most 8 non-negative integer dims, offsets inside the data section with END - BEGIN equal to
   the elements times the dtype's size (no overflow), no two tensors overlapping, no duplicate
   names, metadata values strings. Errors name the file and the tensor: DS_ERR_FORMAT,
   DS_ERR_BOUNDS, DS_ERR_OVERFLOW, DS_ERR_UNSUPPORTED (an unknown dtype). Read-only once open:
   threads may share it. */
typedef struct ds_st_tensor {
    const char *name;       /* NUL-terminated (JSON escapes undone) */
    const char *dtype;      /* "F32", "BF16", "I64", ... */
    ds_type type;           /* F32 / F16 / BF16, or DS_TYPE_COUNT_ for the other dtypes */
    int n_dims;
    int64_t shape[8];       /* row-major: shape[n_dims - 1] is contiguous */
    const void *data;       /* inside the file (may be unaligned) */
    uint64_t nbytes;
} ds_st_tensor;
typedef struct ds_safetensors ds_safetensors;
DS_API ds_status ds_safetensors_open(const char *path, ds_safetensors **out);  /* mmaps */
DS_API ds_status ds_safetensors_open_memory(const void *data, size_t size, ds_safetensors **out); /* data must outlive it */
DS_API void ds_safetensors_free(ds_safetensors *st);
DS_API int64_t ds_safetensors_n_tensors(const ds_safetensors *st);
DS_API const ds_st_tensor *ds_safetensors_tensor_at(const ds_safetensors *st, int64_t i);  /* sorted by name */
DS_API const ds_st_tensor *ds_safetensors_find(const ds_safetensors *st, const char *name);  /* NULL if absent */
DS_API const char *ds_safetensors_meta(const ds_safetensors *st, const char *key);       /* NULL if absent */
/* Writes n tensors (type F32, F16 or BF16; shape[0..n_dims) row-major, data referenced) and
   n_meta metadata pairs meta[2k] = key, meta[2k + 1] = value, atomically (PATH.tmp, rename). */
typedef struct ds_st_write {
    const char *name;
    ds_type type;
    int n_dims;
    int64_t shape[8];
    const void *data;
} ds_st_write;
DS_API ds_status ds_safetensors_write(const char *path, const ds_st_write *t, int n, const char *const *meta, int n_meta);

// >>api:quant
/* Quantizing a model file (deepseek quantize): every weight matrix llama.cpp would quantize
   (2-D tensors named *.weight, norms excepted) is converted to the requested type, the rest is
   copied; all metadata is copied, general.file_type and general.quantization_version set as
   llama.cpp sets them. The conversions are ggml's reference quantizers bit for bit, so a file
   matches the one llama.cpp's quantizer writes from the same input. A tensor whose rows are not
   whole blocks of its type gets llama.cpp's fallback type (ds_quantize_event.fallback). Types:
   F32 F16 BF16 Q8_0 Q6_K Q5_1 Q5_0 Q4_1 Q4_0 IQ4_NL, and llama.cpp's K mixes Q5_K_M Q5_K_S Q4_K_M
   Q4_K_S (Q5_K and Q4_K: the _M mixes), which give some tensors more bits as llama-quantize
   does (ds_quantize_type_names). Thread-safe for distinct output paths. */
typedef struct ds_quantize_event {
    const char *name;           /* the tensor */
    int64_t index, count;       /* this is tensor index (0-based) of count */
    ds_type from, to;           /* its type in the input and in the output */
    int fallback;               /* 1: rows are not whole blocks of the requested type */
} ds_quantize_event;
typedef struct ds_quantize_config {
    const char *type;           /* a name from ds_quantize_type_names (NULL: "Q8_0") */
    int threads;                /* 0: every CPU */
    int keep_output;            /* 1: output.weight keeps its type (llama.cpp's --leave-output-tensor) */
    int pure;                   /* 1: every quantized tensor in the requested type (the mix's base
                                   type); 0: llama.cpp's per-tensor rules (the tied or untied
                                   output matrix gets Q6_K, or Q8_0 when its rows are not whole
                                   256-blocks; the mixes' attn_v / ffn_down choices) */
    const char *imatrix;        /* optional: an importance matrix file (ds_imatrix_load) weighing
                                   each column's rounding error in Q4_0 Q4_1 Q5_0 Q5_1 Q6_K (and
                                   Q4_K Q5_K IQ4_NL), as llama.cpp's --imatrix; DS_ERR_FORMAT when it names a tensor the
                                   model lacks or of other width (an imatrix of another model) */
    void (*progress)(void *user, const ds_quantize_event *ev);  /* optional: after each tensor */
    void *user;
} ds_quantize_config;
/* NULL-terminated list of the accepted ds_quantize_config.type names */
DS_API const char *const *ds_quantize_type_names(void);
/* Reads in_path (any type we load), writes out_path atomically (see ds_gguf_writer_write).
   DS_ERR_INVALID_ARG for an unknown type name. */
DS_API ds_status ds_quantize_model(const char *in_path, const char *out_path, const ds_quantize_config *cfg);

/* ---- importance matrix (deepseek imatrix; llama.cpp's llama-imatrix GGUF format) -------------
   For every weight matrix of the blocks (blk.*), the sum over the evaluated tokens of each input
   column's squared activation, tensor "<weight name>.in_sum2" (F32 [cols, 1]), and the number
   of tokens, "<weight name>.counts" (F32 [1, 1]); keys general.type = "imatrix",
   imatrix.datasets, imatrix.chunk_count, imatrix.chunk_size. The quantizer weighs each column's
   rounding error by the mean (in_sum2 / counts), as llama.cpp's --imatrix does. Dense layers
   only (see ds_session_set_observer). One thread at a time. */
typedef struct ds_imatrix ds_imatrix;
DS_API ds_status ds_imatrix_create(ds_imatrix **out);             /* empty */
DS_API void ds_imatrix_free(ds_imatrix *im);
/* ds_imatrix_attach (>>api:infer) collects from a session's evaluations */
/* Counts one more chunk of chunk_size tokens (the file's imatrix.chunk_* keys). */
DS_API void ds_imatrix_count_chunk(ds_imatrix *im, int chunk_size);
/* Writes atomically; dataset (may be NULL) names the calibration text. */
DS_API ds_status ds_imatrix_write(const ds_imatrix *im, const char *path, const char *dataset);
/* Reads an imatrix file (ours or llama-imatrix's GGUF), checking every entry: F32, in_sum2 of
   shape [cols, n_mat] with its counts [1, n_mat], counts > 0, finite values. DS_ERR_FORMAT
   naming the file and tensor otherwise. */
DS_API ds_status ds_imatrix_load(const char *path, ds_imatrix **out);
DS_API int ds_imatrix_n_entries(const ds_imatrix *im);
/* entry i: the weight's name, its columns, and the mean squared activation per column
   (in_sum2 / counts; of the first matrix when n_mat > 1); NULL when i is out of range */
DS_API const float *ds_imatrix_entry(const ds_imatrix *im, int i, const char **name, int64_t *cols);
/* the same by weight name (NULL when absent) */
DS_API const float *ds_imatrix_find(const ds_imatrix *im, const char *name, int64_t *cols);

// >>api:tokenizer
/* Tokenizers: byte-level BPE (GPT-2, Llama-3, Qwen2, SmolLM, DeepSeek-V3 pre-tokenizers) and
   SentencePiece-style BPE (Llama-2: "▁" for spaces, score-ordered merges, <0xXX> byte
   fallback), loaded from GGUF metadata (tokenizer.ggml.*) or a Hugging Face tokenizer.json,
   saved to both, and trained from text. Token ids equal those of Hugging Face `tokenizers` for
   the same vocabulary; invalid UTF-8 in the input is read as U+FFFD per maximal subpart, as a
   lossy UTF-8 decode would. A ds_tokenizer is read-only after loading: threads may share it
   (every call keeps its scratch state on its own). */
typedef struct ds_tokenizer ds_tokenizer;

/* Copies what it needs; g may be closed afterwards. */
DS_API ds_status ds_tokenizer_from_gguf(const ds_gguf *g, ds_tokenizer **out);
/* A Hugging Face tokenizer.json held in memory (not NUL-terminated). Unsupported components
   (a normalizer, pre-tokenizer or model type we do not implement) give DS_ERR_UNSUPPORTED
   naming the component; a malformed file gives DS_ERR_FORMAT naming what is wrong. */
DS_API ds_status ds_tokenizer_from_json(const char *json, size_t len, ds_tokenizer **out);
/* tokenizer.json or .gguf, told apart by content. */
DS_API ds_status ds_tokenizer_load(const char *path, ds_tokenizer **out);
DS_API void ds_tokenizer_free(ds_tokenizer *t);

DS_API int ds_tokenizer_n_vocab(const ds_tokenizer *t);
DS_API int32_t ds_tokenizer_bos(const ds_tokenizer *t);   /* -1 if none */
DS_API int32_t ds_tokenizer_eos(const ds_tokenizer *t);   /* -1 if none */
DS_API int ds_tokenizer_adds_bos(const ds_tokenizer *t);   /* the metadata says to prepend BOS */
/* end of generation: eos, eot and the chat end markers (<|im_end|>, <|eot_id|>, ...) */
DS_API int ds_tokenizer_is_eog(const ds_tokenizer *t, int32_t id);
/* exact vocabulary string (as stored, e.g. "Ġthe") -> id, or -1 */
DS_API int32_t ds_tokenizer_find(const ds_tokenizer *t, const char *piece, size_t len);
/* the vocabulary string of id (not NUL-terminated), NULL when out of range */
DS_API const char *ds_tokenizer_token(const ds_tokenizer *t, int32_t id, size_t *len);
/* "gpt2", "llama3", "qwen2", "smollm", "deepseek-v3" or "spm" */
DS_API const char *ds_tokenizer_pre_name(const ds_tokenizer *t);

enum { DS_TOKENIZE_ADD_BOS = 1, DS_TOKENIZE_PARSE_SPECIAL = 2 };
/* Text -> ids. ADD_BOS prepends BOS (when the vocabulary has one); PARSE_SPECIAL matches
   control tokens (<|im_start|> ...) written in the text; user-defined added tokens always
   match. ids has room for cap ids; *n_out = number of ids. DS_ERR_BOUNDS (with *n_out = the
   count needed) when cap is too small. */
DS_API ds_status ds_tokenize(const ds_tokenizer *t, const char *text, size_t len, int flags, int32_t *ids, size_t cap, size_t *n_out);
/* Pre-tokenization alone: the end offset of every piece (added tokens are pieces too), for
   inspecting how text is split. Offsets refer to the text after ill-formed UTF-8 is replaced
   by U+FFFD (the text itself when valid). Bounds as ds_tokenize. DS_ERR_UNSUPPORTED for a
   tokenizer with a normalizer (NFC). */
DS_API ds_status ds_tokenizer_split(const ds_tokenizer *t, const char *text, size_t len, int flags, size_t *ends, size_t cap, size_t *n_out);
/* The bytes one token decodes to (byte-level decoded / byte fallback rendered / "▁" as space).
   DS_ERR_BOUNDS (with *n_out = bytes needed) when cap is too small. */
DS_API ds_status ds_token_to_bytes(const ds_tokenizer *t, int32_t id, char *buf, size_t cap, size_t *n_out);
/* ids -> text (the tokens' bytes concatenated; SentencePiece vocabularies drop the leading
   space their encoder added). DS_ERR_BOUNDS (with *n_out = bytes needed) when cap is short. */
DS_API ds_status ds_detokenize(const ds_tokenizer *t, const int32_t *ids, size_t n, char *out, size_t cap, size_t *n_out);
/* Streaming decode: holds back an incomplete UTF-8 sequence until the tokens that complete it
   arrive. Zero-initialise the stream. On DS_ERR_BOUNDS nothing is consumed. */
typedef struct ds_detok_stream {
    unsigned char pending[8];
    int n_pending;
} ds_detok_stream;
DS_API ds_status ds_detok_stream_push(const ds_tokenizer *t, ds_detok_stream *s, int32_t id, char *out, size_t cap, size_t *n_out);

/* Saving: a Hugging Face tokenizer.json (malloc'd through ds_alloc; free with ds_free), or
   tokenizer.ggml.* keys added to a GGUF writer. */
DS_API ds_status ds_tokenizer_to_json(const ds_tokenizer *t, char **json, size_t *len);
DS_API ds_status ds_tokenizer_save_json(const ds_tokenizer *t, const char *path);
DS_API ds_status ds_tokenizer_to_gguf(const ds_tokenizer *t, ds_gguf_writer *w);

/* Byte-level BPE training, with the merge order and tie-breaking of Hugging Face's BpeTrainer
   (highest pair count first; equal counts: the pair of smaller ids). Each line of each text,
   with its line ending, is pre-tokenized on its own, as that trainer reads files. Vocabulary:
   the special tokens (ids 0..), the 256 byte symbols in code point order, then one token per
   merge. Deterministic. Single-threaded. */
typedef void (*ds_progress_fn)(void *user, const char *stage, double done);  /* done in [0,1] */
#if !defined(DS_NO_TOKENIZER_TRAIN)
typedef struct ds_bpe_train_config {
    int vocab_size;                     /* 0: 30000 */
    const char *pre;                    /* "gpt2" (NULL), "smollm", "llama3", "qwen2", "deepseek-v3" */
    const char *const *special_tokens;  /* added first, in order */
    int n_special;
    int min_frequency;                  /* stop when the best pair occurs fewer times (0: 0) */
    ds_progress_fn progress;            /* optional */
    void *user;
} ds_bpe_train_config;
DS_API ds_status ds_bpe_train(const ds_bpe_train_config *cfg, const char *const *texts, const size_t *lens, int n_texts, ds_tokenizer **out);
#endif

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
    /* YaRN RoPE scaling of MLA layers (0: off) */
    float rope_yarn_factor;
    int rope_yarn_orig_ctx;
    float rope_yarn_log_mul;
    int mla_kv_b_split;   /* deepseek2 files: attn_k_b + attn_v_b instead of attn_kv_b */
    /* SDA (DS_ATTN_SDA layers, >>sda; 0: the default in brackets) */
    int sda_block;        /* tokens per key block [64] */
    int sda_topk;         /* most blocks the gate picks per query block [16] */
    int sda_window;       /* tokens before a query block always attended [64]; -1: none */
    int sda_sink;         /* leading blocks always attended [1]; -1: none */
    float sda_sparsity;   /* fraction of earlier blocks a query block may pick, (0, 1] [0.3];
                             1: every block (dense attention; sda_topk does not apply) */
    int sda_index_heads;  /* learned gate: heads and dims of its indexer [0: none, the layer's */
    int sda_index_dim;    /*   own keys and queries score the blocks, MoBA-style] */
} ds_model_config;

/* ---- model: llama and qwen2 weights from a GGUF file --------------------------------------
   A ds_model holds the memory-mapped weights (kept in their stored type), the config and the
   tokenizer. It is read-only after ds_model_load: any number of threads and sessions may use
   one model at once. Tensors are checked on load (presence, shape, type); a mismatch fails
   with DS_ERR_FORMAT naming the tensor. */
typedef struct ds_model ds_model;
typedef struct ds_session ds_session;
/* How ds_model_load reads a file (settings structs are all *_config; ds_model_config is the
   architecture the file describes). */
typedef struct ds_load_config {
    int no_checksum; /* 1: skip checking DS_GGUF_CHECKSUM_KEY (0: a file that has one is verified,
                        reading all its weights once) */
    int reserved_;   /* zero-initialise; future options go here */
} ds_load_config;

/* p may be NULL. Errors: DS_ERR_IO, DS_ERR_FORMAT (missing or malformed tensor or key),
   DS_ERR_UNSUPPORTED (another architecture, a tensor type the kernels lack). */
DS_API ds_status ds_model_load(const char *path, const ds_load_config *p, ds_model **out);
/* The same from a GGUF image in memory (aligned to 32 bytes or more); data must outlive the
   model. */
DS_API ds_status ds_model_load_memory(const void *data, size_t size, const ds_load_config *p, ds_model **out);
DS_API void ds_model_free(ds_model *m);   /* after every session of it is freed */
DS_API const ds_model_config *ds_model_get_config(const ds_model *m);
DS_API const ds_tokenizer *ds_model_tokenizer(const ds_model *m);
/* Changes a loaded model's attention between dense and SDA (>>sda): `lines` are model config
   lines (ds_model_config_parse) among layers.attn / layer.N.attn = dense | sda and sda_block,
   sda_topk, sda_sparsity, sda_window, sda_sink, applied on top of the file's. A dense llama or
   qwen2 model runs as SDA with its own keys as the gate (no training). Call before creating
   sessions. Errors (DS_ERR_INVALID_ARG, naming the line or key): another key, an MLA layer,
   a learned gate's keys, an out-of-range value; the model is then unchanged. */
DS_API ds_status ds_model_configure(ds_model *m, const char *lines);
/* Bytes of weights read per decoded token (every matrix once, the embedding row aside):
   tokens/s times this over the memory bandwidth says how close decoding runs to the limit. */
DS_API uint64_t ds_model_weight_bytes(const ds_model *m);

// >>api:deepseek
/* ---- DeepSeek architecture: Multi-head Latent Attention and DeepSeekMoE ----------------------
   A layer whose config says DS_ATTN_MLA uses MLA: queries through an optional low-rank
   bottleneck (q_lora_rank), keys and values compressed into one kv_lora_rank latent per token
   plus one shared RoPE key of qk_rope_dim; only these two are cached (the latent, normed, and the
   rotated key), and decoding attends in latent space with the key and value up-projections
   absorbed into the query and the output. A layer with DS_FFN_MOE routes each token to
   n_expert_used of n_expert SwiGLU experts (softmax or sigmoid gating, an optional selection
   bias used only to choose, group-limited routing, renormalised weights, routed_scale) and
   adds n_expert_shared always-on experts. Files use llama.cpp's deepseek2 layout. */

/* Errors (DS_ERR_INVALID_ARG) name the first field the MLA or MoE layers cannot work with. */
DS_API ds_status ds_model_config_check_deepseek(const ds_model_config *c);
/* Writes the config's deepseek2 metadata (llama.cpp's key names) into w: every layer MLA,
   dense FFN layers first, MoE layers after (DS_ERR_UNSUPPORTED otherwise). */
DS_API ds_status ds_model_config_write_deepseek2(const ds_model_config *c, ds_gguf_writer *w);
/* KV-cache bytes one token takes over all layers with elem_size-byte elements: MLA layers
   cache kv_lora_rank + qk_rope_dim values, dense and SDA layers 2 * n_head_kv * head_dim (SDA
   layers with a learned gate add its sda_index_dim gate key; the block tree of gate keys,
   about 2 / sda_block of that again in f32, is not counted). */
DS_API size_t ds_model_kv_bytes_per_token(const ds_model_config *c, size_t elem_size);

// >>api:infer
/* ---- sessions: KV cache and forward ---------------------------------------------------------
   A session holds one sequence's KV cache (f16, like llama.cpp's default) and the scratch of
   the forward, all allocated by ds_session_create: evaluation allocates nothing. A session is
   used by one thread at a time; sessions of the same model may run on different threads. */
typedef struct ds_session_config {
    int n_ctx;        /* 0: min(model's context, 4096) */
    int n_threads;    /* 0: online CPUs (ignored when pool is given) */
    ds_pool *pool;    /* optional: run on this pool (not shared by two running sessions) */
    int n_batch;      /* tokens per forward chunk in prefill (0: 512) */
    ds_backend backend;   /* 0: DS_BACKEND_CPU */
    int profile;          /* 1: time each kind of op of the forward (ds_session_get_stats) */
} ds_session_config;

DS_API ds_status ds_session_create(const ds_model *m, const ds_session_config *p, ds_session **out);
DS_API void ds_session_free(ds_session *s);
/* Appends n tokens at the current position and writes the logits (n_vocab floats) of the
   LAST token to logits when it is not NULL. Prompts longer than n_batch run in chunks.
   Errors: DS_ERR_INVALID_ARG (a token id outside the vocabulary, n < 1), DS_ERR_STATE (the
   tokens do not fit in n_ctx). On error the session is unchanged. */
DS_API ds_status ds_session_eval(ds_session *s, const int32_t *tokens, int n, float *logits);
/* Same, but writes n * n_vocab logits, one row per token (perplexity, tests). */
DS_API ds_status ds_session_eval_all(ds_session *s, const int32_t *tokens, int n, float *logits);
DS_API int ds_session_pos(const ds_session *s);     /* tokens in the cache */
DS_API int ds_session_n_ctx(const ds_session *s);
/* The tokens in the cache (ds_session_pos() of them); valid until the next eval or rewind. */
DS_API const int32_t *ds_session_tokens(const ds_session *s);
DS_API const ds_model *ds_session_model(const ds_session *s);
/* Forgets the tokens from pos on (0 resets). DS_ERR_INVALID_ARG if pos > ds_session_pos(). */
DS_API ds_status ds_session_rewind(ds_session *s, int pos);
/* Sees the input of every product with a weight matrix of the dense layers and the output head
   during evaluation (importance matrices, activation statistics): x holds T rows of cols floats;
   name (len bytes, not NUL-terminated) is the weight's GGUF tensor name. Called on the thread
   that evaluates, before the product; must not touch the session. MLA and MoE layers
   (deepseek2) are not observed. fn NULL: none (the default). */
typedef void (*ds_matmul_observer)(void *user, const char *name, size_t len, const float *x, int T, int cols);
DS_API void ds_session_set_observer(ds_session *s, ds_matmul_observer fn, void *user);
/* Collects from s's evaluations from now on (sets s's observer; im must outlive them, or
   detach with ds_session_set_observer(s, NULL, NULL)). An allocation failure while collecting
   is reported by ds_imatrix_write. */
DS_API void ds_imatrix_attach(ds_imatrix *im, ds_session *s);
/* Where a session's forward spends its time, by kind of op: wall-clock seconds of each (the
   whole pool's work on it), counted while ds_session_config.profile is 1 since creation or the
   last ds_session_reset_stats. The matmuls are split by the weights they read. */
typedef enum ds_op_kind {
    DS_OP_EMBED,        /* embedding rows, the RoPE tables of the positions */
    DS_OP_NORM,         /* residual add + RMSNorm */
    DS_OP_QKV,          /* matmuls of the attention's inputs (q, k, v; MLA's projections) */
    DS_OP_ROPE_CACHE,   /* biases, RoPE, keys and values into the cache */
    DS_OP_ATTENTION,    /* attention over the cache (MLA: the whole attention block) */
    DS_OP_ATTN_OUT,     /* the attention's output matmul */
    DS_OP_FFN_UP,       /* gate and up matmuls (MoE: the whole expert block) */
    DS_OP_SWIGLU,
    DS_OP_FFN_DOWN,     /* the down matmul */
    DS_OP_OUTPUT,       /* final norm and the vocabulary matmul */
    DS_OP_KIND_COUNT
} ds_op_kind;
typedef struct ds_session_stats {
    double seconds[DS_OP_KIND_COUNT];
    int64_t tokens;     /* tokens evaluated */
    int64_t forwards;   /* forward passes (a prompt chunk or a decoded token each) */
} ds_session_stats;
DS_API ds_session_stats ds_session_get_stats(const ds_session *s);
DS_API void ds_session_reset_stats(ds_session *s);
DS_API const char *ds_op_kind_name(ds_op_kind k);   /* "matmul qkv", ...; "?" when out of range */

/* ---- attention benchmark -----------------------------------------------------------------------
   One layer's attention alone (no projections) over a synthetic f16 cache of n tokens, dense
   (the session's attention) or SDA (>>sda), for `deepseek bench --attn`. Keys come in runs of
   1..16 blocks on one of 64 random topics, each query asks about the topic of a random earlier
   token, and the gate's keys and queries (4 heads of 32 dims) follow the same topics, so the
   gate has something to find. Memory: about n (H + 2 Hkv) D 6 bytes. */
typedef struct ds_attn_bench ds_attn_bench;
/* sda: its sda_* fields set SDA's settings (NULL or 0 fields: the defaults). */
DS_API ds_status ds_attn_bench_create(int n_head, int n_head_kv, int head_dim, int n, const ds_model_config *sda, ds_pool *pool, ds_attn_bench **out);
/* Runs T queries at positions pos0.. (T = 1: a decode step at depth pos0 + 1), dense (sda = 0)
   or SDA. seconds: its wall time; bytes_read (may be NULL): bytes of the cache one query reads
   on average, K and V rows of every KV head in f16, SDA adding a bound on the gate-tree nodes
   its query block scores (f32); work_bytes (may be NULL): its attention scratch (SDA: with the
   gate tree). */
DS_API ds_status ds_attn_bench_run(ds_attn_bench *b, int sda, int T, int pos0, double *seconds, double *bytes_read, size_t *work_bytes);
DS_API void ds_attn_bench_free(ds_attn_bench *b);

/* ---- sampler ---------------------------------------------------------------------------------
   Applied in this order: repetition penalty, temperature, top-k, top-p, min-p, then a draw
   from what is left (probabilities renormalised). A zero-initialised config is greedy. */
typedef struct ds_sampler_config {
    float temperature;     /* <= 0: greedy (argmax after the repetition penalty) */
    int top_k;             /* keep the k most likely tokens (0: off) */
    float top_p;           /* keep the smallest most-likely set whose mass reaches p (0 or 1: off) */
    float min_p;           /* keep tokens with p >= min_p * p(most likely) (0: off) */
    float repeat_penalty;  /* CTRL-style: logit / r if > 0 else logit * r, for recent tokens (0 or 1: off) */
    int repeat_last_n;     /* how many recent tokens the penalty looks at (0: 64) */
    uint64_t seed;         /* same seed, same tokens (0: a fixed default seed) */
} ds_sampler_config;
typedef struct ds_sampler ds_sampler;   /* one thread at a time */

DS_API ds_status ds_sampler_create(const ds_sampler_config *cfg, int n_vocab, ds_sampler **out);
DS_API void ds_sampler_free(ds_sampler *s);
/* Picks a token from n_vocab logits (left unchanged). Allocation-free. */
DS_API int32_t ds_sampler_sample(ds_sampler *s, const float *logits);
/* Records a token for the repetition penalty (prompt and generated tokens alike). */
DS_API void ds_sampler_accept(ds_sampler *s, int32_t token);
DS_API void ds_sampler_reset(ds_sampler *s, uint64_t seed);   /* clears history, reseeds (0: default) */

/* ---- generation ------------------------------------------------------------------------------
   ds_generate() runs a whole completion; a ds_generator does the same work a few tokens or
   milliseconds at a time, for frame loops. Text reaches the host through on_token as it is
   produced: complete UTF-8 only, never a stop string nor a prefix of one still undecided.
   A generator uses its session: both belong to one thread at a time. */
/* Called with each new piece of completion text; return nonzero to cancel. */
typedef int (*ds_token_fn)(void *user, int32_t token, const char *text, size_t len);

typedef enum ds_gen_state {
    DS_GEN_RUNNING = 0,      /* more to come */
    DS_GEN_EOS = 1,          /* the model ended its text (an end-of-generation token) */
    DS_GEN_STOP_STRING = 2,  /* a stop string appeared (it is not part of the text) */
    DS_GEN_MAX_TOKENS = 3,   /* max_tokens reached */
    DS_GEN_CONTEXT_FULL = 4, /* the session's n_ctx is full */
    DS_GEN_CANCELLED = 5     /* on_token returned nonzero */
} ds_gen_state;

typedef struct ds_generate_config {
    int max_tokens;                 /* 0: until the end of generation or a full context */
    ds_sampler_config sampler;
    const char *const *stop;        /* n_stop stop strings (may be NULL) */
    int n_stop;
    ds_token_fn on_token;           /* optional streaming callback */
    void *user;                     /* passed to on_token */
    int append;                     /* 0: the prompt is the whole context; tokens already in the
                                       session that match its start are reused (chat turns);
                                       1: the prompt continues what the session holds */
    int plain_text;                 /* 1: special-token markup in the prompt is plain text */
} ds_generate_config;

typedef struct ds_generate_result {
    ds_gen_state state;
    int n_prompt;           /* prompt tokens evaluated (after reuse) */
    int n_reused;           /* prompt tokens found already in the session */
    int n_generated;        /* completion tokens sampled */
    double prompt_seconds;  /* time in prompt evaluation */
    double gen_seconds;     /* time in sampling and decoding */
} ds_generate_result;

typedef struct ds_generator ds_generator;
/* Tokenizes the prompt and prepares a completion; no model work happens yet. The session and
   the prompt's tokens stay the generator's until ds_generator_free. */
DS_API ds_status ds_generator_create(ds_session *s, const char *prompt, const ds_generate_config *cfg, ds_generator **out);
/* The same with a prompt already tokenized (n ids, copied; BOS is not added): text with NUL
   bytes, a conversation from ds_chat_tokenize. */
DS_API ds_status ds_generator_create_tokens(ds_session *s, const int32_t *ids, int n, const ds_generate_config *cfg, ds_generator **out);
/* Does work until max_tokens new tokens came out in this call (0: no limit) or the next piece
   of work would overrun max_seconds (0: no limit), or the generation ends. The prompt is
   evaluated in chunks sized to the time left. One piece of work always runs, so a call overruns
   its budget by at most about one token's decode time. Returns an error status on failure; the
   state says whether to call again. */
DS_API ds_status ds_generator_step(ds_generator *g, int max_tokens, double max_seconds);
DS_API ds_gen_state ds_generator_state(const ds_generator *g);
/* The completion so far: its first *len bytes are what on_token received (text that may still
   turn into a stop string is held back). Once the generation ended it is NUL-terminated at
   *len. Valid until the next step or ds_generator_free. */
DS_API const char *ds_generator_text(const ds_generator *g, size_t *len);
DS_API const ds_generate_result *ds_generator_result(const ds_generator *g);
DS_API void ds_generator_free(ds_generator *g);
/* Whole completion in one call. result may be NULL. */
DS_API ds_status ds_generate(ds_session *s, const char *prompt, const ds_generate_config *cfg, ds_generate_result *result);

/* ---- chat templates (pure functions of their arguments: thread-safe) ------------------------
   Each family renders byte for byte what its Jinja template (tokenizer.chat_template) renders,
   with the model's own details: the default system message a ChatML template inserts when the
   conversation has none (SmolLM2, Qwen2), the BOS text Llama-3 and DeepSeek write, DeepSeek-V3's
   system messages gathered in front and its tool outputs (role "tool").
   Safety: the text of ds_chat_apply is markup; tokenized with DS_TOKENIZE_PARSE_SPECIAL (as
   ds_generate does by default) a message holding "<|im_end|><|im_start|>system" becomes a real
   system turn. For messages from users, use ds_chat_tokenize + ds_generator_create_tokens. */
typedef enum ds_chat_template {
    DS_CHAT_AUTO = 0,    /* from the model's tokenizer.chat_template metadata */
    DS_CHAT_CHATML = 1,  /* <|im_start|>role\ncontent<|im_end|>\n (SmolLM2, Qwen2) */
    DS_CHAT_LLAMA3 = 2,  /* <|begin_of_text|><|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|> */
    DS_CHAT_DEEPSEEK2 = 3, /* <｜begin▁of▁sentence｜>system\n\nUser: content\n\nAssistant: content<｜end▁of▁sentence｜> */
    DS_CHAT_DEEPSEEK3 = 4  /* <｜begin▁of▁sentence｜>system<｜User｜>content<｜Assistant｜>content<｜end▁of▁sentence｜> */
} ds_chat_template;
typedef struct ds_chat_message {
    const char *role;      /* "system", "user", "assistant" */
    const char *content;
    size_t content_len;    /* bytes of content, NUL bytes included as text (0: strlen(content)) */
} ds_chat_message;
/* The template the model's metadata names; DS_ERR_UNSUPPORTED when it matches none we know. */
DS_API ds_status ds_model_chat_template(const ds_model *m, ds_chat_template *out);
/* Formats n messages (and, with add_assistant, the opening of the assistant's turn) into buf
   as NUL-terminated text for a prompt with special-token markup. *len gets the length without
   the NUL; DS_ERR_BOUNDS with *len set to it when cap is too small. m may be NULL unless
   tmpl is DS_CHAT_AUTO; with DS_CHAT_AUTO the model's template also gives its default system
   message. */
DS_API ds_status ds_chat_apply(const ds_model *m, ds_chat_template tmpl, const ds_chat_message *msgs, int n, int add_assistant, char *buf, size_t cap, size_t *len);
/* The same for a template given as its Jinja source (len bytes; a tokenizer_config.json's
   chat_template): the family is recognised from it, with its default system message.
   DS_ERR_UNSUPPORTED when it is none we know. */
DS_API ds_status ds_chat_apply_source(const char *source, size_t source_len, const ds_chat_message *msgs, int n, int add_assistant, char *buf, size_t cap, size_t *len);
/* The conversation as token ids, safe for untrusted messages: only the template's own markup
   becomes special tokens; roles and contents are plain text. flags: DS_TOKENIZE_PARSE_SPECIAL
   also parses special tokens written in the messages (trusted input only). BOS comes first when
   the template writes it or the vocabulary asks for it. Bounds as ds_tokenize. */
DS_API ds_status ds_chat_tokenize(const ds_model *m, ds_chat_template tmpl, const ds_chat_message *msgs, int n, int add_assistant, int flags, int32_t *ids, size_t cap, size_t *n_out);

// >>api:lora
/* ---- LoRA adapters at inference -------------------------------------------------------------
   An adapter adds a low-rank update to some weight matrices: W' = W + scale * (alpha / r) * B A,
   A (r, in), B (out, r). Two file formats, both read and written:
   - llama.cpp's LoRA GGUF: general.type = "adapter", adapter.type = "lora", adapter.lora.alpha
     (f32; absent: alpha = r), general.architecture = the base's; tensors blk.N.W.weight.lora_a
     (ggml ne [in, r]) and .lora_b (ne [r, out]) in F32, F16, BF16 or Q8_0, W one of attn_q,
     attn_k, attn_v, attn_output, ffn_gate, ffn_up, ffn_down (and deepseek2's attn_q_a,
     attn_q_b, attn_kv_a_mqa, attn_kv_b, ffn_{gate,up,down}_shexp, which only merging applies).
   - Hugging Face PEFT: a folder with adapter_model.safetensors and adapter_config.json (or the
     .safetensors path, the JSON beside it); tensors
     base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight (r, in) / lora_B (out, r),
     likewise k_proj v_proj o_proj and mlp.gate_proj up_proj down_proj; r and lora_alpha from the
     JSON (use_rslora: alpha * sqrt(r)). Hugging Face orders a llama's q_proj / k_proj rows
     differently from GGUF (each head's rotary pairs): converting between the two needs the
     head counts, so a PEFT adapter for a llama, or a GGUF adapter to be saved as PEFT, is loaded
     with its base model.
   An adapter is read-only after loading: sessions and threads may share it. */
typedef struct ds_lora_adapter ds_lora_adapter;
typedef enum ds_lora_format { DS_LORA_GGUF = 0, DS_LORA_PEFT = 1 } ds_lora_format;
/* Reads a GGUF adapter or a PEFT folder / .safetensors file (told apart by content). base may
   be NULL; when given, the adapter is checked against it (ds_lora_adapter_check) and takes its
   head counts. Every name, shape, rank and alpha is validated: errors name the file and the
   tensor or key (DS_ERR_FORMAT, DS_ERR_UNSUPPORTED for a target or feature we do not apply). */
DS_API ds_status ds_lora_adapter_load(const char *path, const ds_model *base, ds_lora_adapter **out);
/* GGUF: one file, atomic. PEFT: path is a folder (created if absent) that gets
   adapter_model.safetensors (F32) and adapter_config.json, each written atomically. */
DS_API ds_status ds_lora_adapter_save(const ds_lora_adapter *a, const char *path, ds_lora_format format);
DS_API void ds_lora_adapter_free(ds_lora_adapter *a);
DS_API float ds_lora_adapter_alpha(const ds_lora_adapter *a);
DS_API int ds_lora_adapter_rank(const ds_lora_adapter *a);       /* the largest r of its pairs */
DS_API int ds_lora_adapter_n_pairs(const ds_lora_adapter *a);    /* adapted matrices */
/* DS_OK when every pair names a matrix m has with matching shapes and the architectures agree
   (DS_ERR_FORMAT naming the tensor otherwise). */
DS_API ds_status ds_lora_adapter_check(const ds_lora_adapter *a, const ds_model *m);
/* Applies n adapters (n = 0 detaches them all), adapter i with strength scales[i] (NULL: all
   1): every matmul by an adapted weight adds sum_i scales[i] * (alpha_i / r_i) * B_i (A_i x);
   the model's weights are untouched, so sessions of one model may use different adapters.
   The adapters must outlive their use by s. Changing the adapters or a scale changes what the
   cached keys and values would have been, so the session is rewound to 0 (the next
   ds_generate re-evaluates its prompt); setting the same adapters and scales again keeps the
   cache. Errors leave the session's adapters as they were. */
DS_API ds_status ds_session_set_lora(ds_session *s, ds_lora_adapter *const *a, const float *scales, int n);
/* Merges n adapters into the model file base_path, writing out_path atomically:
   W + sum_i scales[i] * (alpha_i / r_i) B_i A_i for each adapted matrix (in f32, from the
   dequantized weight), then every tensor in its original type, or with cfg->type given,
   quantized as ds_quantize_model would (cfg may be NULL; cfg->progress reports each tensor).
   From an F32 base the merged model's logits equal the adapted session's within f32 rounding;
   a quantized base is re-quantized, so the merged weights differ from W + BA by that type's
   rounding. */
DS_API ds_status ds_lora_merge(const char *base_path, ds_lora_adapter *const *a, const float *scales, int n, const char *out_path, const ds_quantize_config *cfg);

// >>api:train
/* ---- training ----------------------------------------------------------------------------
   Build a Llama-family model from a ds_model_config, train it from scratch on token shards,
   checkpoint and resume bit-exactly, export it as a llama GGUF:

       ds_model_config mc; ds_train_config tc;
       ds_model_config_parse(text, &mc, &tc, NULL);      (or fill the structs by hand)
       ds_trainer *tr; ds_trainer_create(&mc, &tc, &tr);
       ds_train_data *d; ds_train_data_open("train.tok", "val.tok", &d);
       for (;;) { ds_trainer_step(tr, d, &info); ... }  (info: loss, lr, grad norm, scale)
       ds_trainer_save_checkpoint(tr, "ckpt.gguf"); ds_trainer_free(tr);

   Parameters, gradients and AdamW moments live in contiguous f32 buffers (master weights are
   always f32); the matmuls run in the compute precision. A trainer belongs to one thread at a
   time; it runs its loops on its own thread pool. */
typedef enum ds_precision {
    DS_PREC_F32 = 0,
    DS_PREC_BF16 = 1,   /* AVX512_BF16 dot products where present, emulated otherwise */
    DS_PREC_FP16 = 2,   /* emulated: operands rounded to IEEE half, f32 accumulation */
    DS_PREC_FP8 = 3     /* emulated E4M3: 1x128 activation tiles, 128x128 weight blocks */
} ds_precision;

typedef struct ds_train_config {
    ds_precision precision;
    int batch;              /* sequences per micro-batch (0: 4) */
    int seq_len;            /* tokens per sequence (0: 64) */
    int grad_accum;         /* micro-batches per optimizer step (0: 1) */
    int steps;              /* total optimizer steps (0: 1000) */
    float lr;               /* peak learning rate (0: 3e-4) */
    float min_lr;           /* end of the cosine decay, a fraction of lr (0: 0.1; < 0: 0) */
    int warmup;             /* linear warm-up steps (0: none) */
    float weight_decay;     /* AdamW decay on matrices only (0: 0.1; < 0: none) */
    float beta1, beta2;     /* 0: 0.9, 0.95 */
    float adam_eps;         /* 0: 1e-8 */
    float grad_clip;        /* global-norm clip (0: 1.0; < 0: off) */
    uint64_t seed;          /* weights, data order (0: 1234) */
    float init_std;         /* weight init (0: 0.02) */
    int recompute;          /* 1: activation checkpointing (recompute each layer in backward) */
    int n_threads;          /* 0: all CPUs */
    ds_backend backend;     /* 0: DS_BACKEND_CPU */
    /* dynamic loss scaling (used when precision != f32, or when loss_scale > 0 is given) */
    float loss_scale;       /* initial scale (0: 65536) */
    int loss_scale_window;  /* clean steps before doubling (0: 2000) */
    int no_loss_scaling;    /* 1: never scale */
    /* the CLI's settings (the library keeps them in checkpoints) */
    int checkpoint_every;   /* 0: 100 */
    int keep_checkpoints;   /* 0: 3 */
    int eval_every;         /* 0: 50 */
    int eval_batches;       /* 0: 8 */
    /* MoE layers */
    float moe_bias_rate;    /* auxiliary-loss-free balancing: selection-bias step per optimizer step (0: 1e-3; < 0: off) */
    float moe_balance_alpha;/* weight of the sequence-level balance loss (0: off) */
} ds_train_config;

/* Parse a config file: "key = value" lines, '#' comments. Model keys (n_vocab, n_embd,
   n_layer, n_head, n_head_kv, head_dim, n_ff, n_ctx, norm_eps, rope_base, tied_output,
   arch, layers.attn = dense | mla | sda, layers.ffn = dense | moe, layer.N.attn / layer.N.ffn,
   the MLA / MoE sizes, sda_block, sda_topk, sda_window, sda_sink, sda_sparsity,
   sda_index_heads, sda_index_dim) fill mc;
   training keys (precision, batch, seq_len, grad_accum, steps, lr, min_lr, warmup,
   weight_decay, beta1, beta2, adam_eps, grad_clip, seed, init_std, recompute, threads,
   loss_scale, loss_scale_window, checkpoint_every, keep_checkpoints, eval_every,
   eval_batches) fill tc (which may be NULL: training keys are then errors). Keys not
   in `text` keep the values already in the structs, so flags can be applied on top by calling
   again with "key = value". An unknown key, a bad value or an impossible shape is an error
   naming the line. `where` names the text in messages (a file name; NULL: "config"). */
DS_API ds_status ds_model_config_parse(const char *text, ds_model_config *mc, ds_train_config *tc, const char *where);
#if !defined(DS_NO_TRAIN)
/* Fill defaults (0 fields) and check that the shape is trainable. */
DS_API ds_status ds_model_config_check(ds_model_config *mc);

/* ---- token shards: magic "DSTK", version 1, bytes per token (2 or 4), n_vocab, count, the
   vocabulary fingerprint (0: not recorded, as in shards from before it existed), tokens ------ */
DS_API ds_status ds_token_shard_write(const char *path, const uint32_t *tokens, uint64_t n, int n_vocab);
/* The same, recording the fingerprint of the vocabulary the tokens come from (0: none). */
DS_API ds_status ds_token_shard_write_vocab(const char *path, const uint32_t *tokens, uint64_t n, int n_vocab, uint64_t vocab_fp);
/* A vocabulary's fingerprint: XXH64 (seed 0) of its token strings, each as GGUF stores it in
   tokenizer.ggml.tokens (u64 length, bytes), so a tokenizer and any GGUF holding it agree.
   The byte vocabulary ('deepseek data' without a tokenizer) is recorded as 0. */
DS_API uint64_t ds_tokenizer_fingerprint(const ds_tokenizer *t);
/* The fingerprint and size of g's tokenizer.ggml.tokens (DS_ERR_NOT_FOUND when absent). */
DS_API ds_status ds_gguf_vocab_fingerprint(const ds_gguf *g, uint64_t *fp, int *n_vocab);
typedef struct ds_train_data ds_train_data;
/* val_path may be NULL (no validation). The two shards must agree on their vocabulary. */
DS_API ds_status ds_train_data_open(const char *train_path, const char *val_path, ds_train_data **out);
DS_API void ds_train_data_free(ds_train_data *d);
DS_API uint64_t ds_train_data_count(const ds_train_data *d, int val);
/* The vocabulary size and fingerprint (0: not recorded) the shards were written with. */
DS_API void ds_train_data_vocab(const ds_train_data *d, int *n_vocab, uint64_t *vocab_fp);

/* ---- the trainer --------------------------------------------------------------------------- */
typedef struct ds_trainer ds_trainer;
typedef struct ds_train_step_info {
    int step;               /* the optimizer step just done (1-based) */
    float loss;             /* mean training loss of the step (all micro-batches) */
    float lr;
    float grad_norm;        /* before clipping, unscaled */
    float loss_scale;       /* scale used for this step (1 when scaling is off) */
    int skipped;            /* 1: inf/NaN loss or gradients, the update was skipped */
    int skipped_total;      /* steps skipped so far */
    double tokens;          /* tokens processed by the step */
} ds_train_step_info;

DS_API ds_status ds_trainer_create(const ds_model_config *mc, const ds_train_config *tc, ds_trainer **out);
DS_API void ds_trainer_free(ds_trainer *tr);
DS_API const ds_model_config *ds_trainer_model_config(const ds_trainer *tr);
DS_API const ds_train_config *ds_trainer_train_config(const ds_trainer *tr);
/* The parameter and gradient buffers (n floats each) for tests and custom optimizers. */
DS_API float *ds_trainer_params(ds_trainer *tr, size_t *n);
DS_API float *ds_trainer_grads(ds_trainer *tr, size_t *n);
/* One optimizer step on the next grad_accum micro-batches of d (deterministic from the seed
   and the step). A step whose loss or gradients are not finite changes no weight (info->
   skipped; with loss scaling the scale halves). Should an update itself make a weight
   non-finite, the step returns DS_ERR_STATE: the trainer's weights are then lost, and a
   checkpoint is the way back. */
DS_API ds_status ds_trainer_step(ds_trainer *tr, ds_train_data *d, ds_train_step_info *info);
/* One optimizer step on caller-given tokens: tokens and targets are grad_accum * batch *
   seq_len ids each. A target of DS_TARGET_IGNORE leaves its position out of the loss (the
   mean runs over the other positions of each micro-batch), as for a prompt's tokens. */
#define DS_TARGET_IGNORE (-1)
DS_API ds_status ds_trainer_step_tokens(ds_trainer *tr, const int32_t *tokens, const int32_t *targets, ds_train_step_info *info);
/* Mean loss over (B, T) tokens / targets without touching gradients; B <= batch, T <= seq_len. */
DS_API ds_status ds_trainer_loss(ds_trainer *tr, const int32_t *tokens, const int32_t *targets, int B, int T, float *loss);
/* Forward + backward on one micro-batch: gradients are ADDED to the gradient buffer (scaled by
   `scale`, the loss being the mean over this micro-batch). */
DS_API ds_status ds_trainer_grad(ds_trainer *tr, const int32_t *tokens, const int32_t *targets, int B, int T, float scale, float *loss);
/* Next-token probabilities (n_vocab floats) after tokens[0..T), T <= seq_len: the training
   forward on one sequence, for sampling from a model while it trains. */
DS_API ds_status ds_trainer_next_probs(ds_trainer *tr, const int32_t *tokens, int T, float *probs);
/* Mean validation loss over eval_batches fixed windows of the validation shard. */
DS_API ds_status ds_trainer_eval(ds_trainer *tr, ds_train_data *d, float *loss);
/* What a trainer measures of itself, for profiling. */
typedef struct ds_trainer_stats {
    size_t activation_bytes;     /* peak bytes of the activation arena (what recompute shrinks) */
    double matmul_flops;         /* matmul floating-point operations of one optimizer step (forward + backward) */
    /* seconds spent in matmuls since creation (for the fraction-of-peak figure): wall-clock,
       and CPU time of the whole process (all threads; unaffected by other programs) */
    double matmul_seconds, matmul_cpu_seconds;
} ds_trainer_stats;
DS_API ds_trainer_stats ds_trainer_get_stats(const ds_trainer *tr);
DS_API int ds_trainer_step_count(const ds_trainer *tr);
/* MoE layer `layer`: each expert's share of the routed choices made in forward passes since
   the last call (share: n_expert doubles summing to 1), then starts counting anew. Returns
   n_expert, or 0 when the layer is not MoE. */
DS_API int ds_trainer_expert_share(ds_trainer *tr, int layer, double *share);

/* The tokenizer the model is trained for: its tokenizer.* keys go into every checkpoint and
   (when save_model gets none) the model. Its token count must equal n_vocab. The trainer
   keeps the pointer: g must stay open while the trainer uses it (NULL: none). */
DS_API ds_status ds_trainer_set_tokenizer(ds_trainer *tr, const ds_gguf *g);

/* Checkpoint: weights, AdamW moments, step, RNG, data cursor, loss scaler, both configs and
   the tokenizer's keys, as a GGUF file written atomically (temp file, fsync, rename) with a
   data checksum (DS_GGUF_CHECKSUM_KEY). Loading verifies the checksum (files without one, from
   older versions, load unchecked) and restores all of it; training then continues
   bit-identically to an uninterrupted run. Saving refuses non-finite weights or moments
   (DS_ERR_STATE), so a checkpoint never holds a diverged run. */
DS_API ds_status ds_trainer_save_checkpoint(ds_trainer *tr, const char *path);
DS_API ds_status ds_trainer_load_checkpoint(ds_trainer *tr, const char *path);
/* Read only the configs stored in a checkpoint (to create the trainer before loading). */
DS_API ds_status ds_checkpoint_read_config(const char *path, ds_model_config *mc, ds_train_config *tc);

/* The trained model as a llama GGUF that `deepseek run` and llama.cpp load: F32 weights with
   a data checksum, tokenizer metadata copied from `tokenizer` (every KV of that GGUF: a
   tokenizer or model file), else the tokenizer.* keys of the trainer's tokenizer
   (ds_trainer_set_tokenizer), else a byte-level vocabulary (token i < 256 = byte i). The tokenizer's token count must
   equal n_vocab; non-finite weights are refused (DS_ERR_STATE). */
DS_API ds_status ds_trainer_save_model(ds_trainer *tr, const char *path, const ds_gguf *tokenizer);
#endif /* DS_NO_TRAIN */

/* Measured f32 FMA peak of this machine (GFLOP/s, wall-clock) with n_threads threads: a
   register-only FMA loop of the widest vector unit the kernels use, run for about `seconds`.
   per_core (may be NULL) receives the rate per second of thread CPU time: one core's peak,
   which other programs sharing the machine do not distort. */
DS_API double ds_cpu_f32_peak_gflops(int n_threads, double seconds, double *per_core);
/* The same for the bf16 dot-product instruction the bf16 matmuls use (vdpbf16ps, 2 FLOPs per
   multiply-add); 0 where the CPU lacks AVX-512 BF16. Where it issues once per two cycles
   against two FMAs per cycle (Sapphire and Emerald Rapids), this is half the f32 peak, and
   bf16 matmuls cannot outrun f32 ones whatever the kernel. */
DS_API double ds_cpu_bf16_peak_gflops(int n_threads, double seconds, double *per_core);

#if !defined(DS_NO_TRAIN)
// >>api:finetune
/* ---- LoRA and QLoRA fine-tuning --------------------------------------------------------------
   Fine-tune a loaded llama-family model through low-rank updates: each targeted projection
   W (out, in) acts as W + (alpha / r) B A, where A (r, in) and B (out, r) are trained and W stays
   frozen in the type it was loaded in (F32, F16, BF16, Q4_0, Q4_1, Q8_0, Q4_K, Q6_K: a quantized
   base stays quantized, which is QLoRA; the matmuls dequantize a block of rows at a time and
   no float copy of the base is ever made). Norms, embeddings and the output projection stay
   frozen. The trainer's parameter buffer holds only the A / B pairs; AdamW, gradient clipping,
   loss scaling, accumulation, recompute and checkpoints work as for ds_trainer_create.

       ds_model *m; ds_model_load("base.gguf", NULL, &m);
       ds_lora_config lc = {0};                       (r 16, alpha 32, dropout 0.1, all targets)
       ds_trainer *tr; ds_trainer_create_lora(m, &lc, &tc, &tr);
       ... ds_trainer_step_tokens(tr, tokens, targets, &info) ...
       ds_trainer_save_lora(tr, "adapter.gguf");     (llama.cpp loads it with --lora)

   Init as PEFT: A uniform in +-1/sqrt(in) (Kaiming with a = sqrt 5), B zero, so a fresh
   adapter leaves the model's outputs unchanged. */
#define DS_LORA_Q 0x01u
#define DS_LORA_K 0x02u
#define DS_LORA_V 0x04u
#define DS_LORA_O 0x08u        /* attn_output */
#define DS_LORA_GATE 0x10u
#define DS_LORA_UP 0x20u
#define DS_LORA_DOWN 0x40u
#define DS_LORA_ALL 0x7fu      /* every linear projection of the layers */
typedef struct ds_lora_config {
    int r;              /* rank (0: 16) */
    float alpha;        /* the update's scale is alpha / r (0: 32) */
    float dropout;      /* dropout on the LoRA input while training (0: 0.1; < 0: off) */
    unsigned targets;   /* DS_LORA_* bits (0: DS_LORA_ALL) */
    uint64_t seed;      /* A's init and the dropout masks (0: the train config's seed) */
} ds_lora_config;

/* A trainer of LoRA pairs over `base`, which must stay loaded while the trainer lives.
   Errors: DS_ERR_INVALID_ARG (r <= 0 after defaults, alpha <= 0, dropout >= 1, unknown target
   bits), DS_ERR_UNSUPPORTED (MLA / MoE / SDA layers, qwen2's biases and NeoX RoPE). */
DS_API ds_status ds_trainer_create_lora(const ds_model *base, const ds_lora_config *lc, const ds_train_config *tc, ds_trainer **out);
/* The trainer's LoRA config with defaults filled, or NULL for a trainer of a whole model. */
DS_API const ds_lora_config *ds_trainer_lora_config(const ds_trainer *tr);
/* The adapter as llama.cpp's LoRA GGUF, written atomically: general.type = adapter,
   adapter.type = lora, adapter.lora.alpha, and F32 tensors blk.N.<w>.weight.lora_a
   (ne [in, r]) and .lora_b (ne [r, out]). */
DS_API ds_status ds_trainer_save_lora(ds_trainer *tr, const char *path);
/* The LoRA config a checkpoint was written with (DS_ERR_NOT_FOUND: a whole-model checkpoint). */
DS_API ds_status ds_checkpoint_read_lora(const char *path, ds_lora_config *lc);

/* ---- fine-tuning data: JSONL examples ------------------------------------------------------
   One JSON object per line (blank lines skipped), one of:
       {"text": "..."}                                   every token is learnt
       {"prompt": "...", "completion": "..."}            only the completion's tokens
       {"messages": [{"role": "user", "content": "..."}, {"role": "assistant", ...}, ...]}
                                                         rendered with the model's chat template
                                                         (ds_chat_apply); only the assistant
                                                         turns' tokens (content and end marker)
   text and completion end with the vocabulary's EOS (learnt), so the model learns to stop; BOS
   comes first where the vocabulary asks for it. Other keys are ignored. Errors name the file
   and line (a malformed line, a missing or non-string field, an example with nothing to learn,
   a file with no examples). */
typedef struct ds_sft_data ds_sft_data;
DS_API ds_status ds_sft_data_load(const ds_model *m, const char *path, ds_sft_data **out);
/* The same from text in memory (len bytes); `name` stands for the file in messages. */
DS_API ds_status ds_sft_data_load_memory(const ds_model *m, const char *text, size_t len, const char *name, ds_sft_data **out);
DS_API void ds_sft_data_free(ds_sft_data *d);
DS_API int64_t ds_sft_data_examples(const ds_sft_data *d);
/* Tokens over all examples, and how many of them are learnt (may be NULL). */
DS_API int64_t ds_sft_data_tokens(const ds_sft_data *d, int64_t *learnt);
/* Packs the examples into windows of seq_len tokens for ds_trainer_step_tokens: the examples
   are concatenated in an order shuffled from (seed, epoch) (epoch < 0: file order), then cut
   into n windows; targets[i] is the next token, or DS_TARGET_IGNORE where that token is not
   learnt or past the end. *tokens and *targets (n * seq_len each) are freed with ds_free. */
DS_API ds_status ds_sft_data_pack(const ds_sft_data *d, int seq_len, uint64_t seed, int epoch, int32_t **tokens, int32_t **targets, int64_t *n);
/* The tokens and targets (grad_accum * batch * seq_len each) of optimizer step `step` (0-based,
   over all epochs) of tr's settings: epoch step / steps_per_epoch, that epoch's windows in order
   (ds_sft_data_pack with tr's seed), empty windows (no target) after the last. A function of
   the step alone, so a resumed run sees the same batches. steps_per_epoch may be NULL. */
DS_API ds_status ds_sft_data_step(const ds_sft_data *d, const ds_trainer *tr, int step, int32_t *tokens, int32_t *targets, int *steps_per_epoch);

/* ---- fine-tuning in one call ------------------------------------------------------------------ */
typedef struct ds_finetune_config {
    int epochs;             /* passes over the data (0: 3) */
    ds_train_config train;  /* zero fields: ds_train_config's defaults, except lr 1e-3, seq_len 256,
                               no weight decay, warm-up over 5% of the steps; steps follows from
                               the data and the epochs */
    /* optional, after each step: non-zero stops early (the trainer is returned as it is) */
    int (*on_step)(void *user, const ds_train_step_info *info, int epoch);
    void *user;
} ds_finetune_config;
/* The seed's quick start: LoRA over m trained on d for fc->epochs passes (fc may be NULL);
   *out receives the trainer (save the adapter with ds_trainer_save_lora, free it after).

       ds_lora_config lc = {16, 32.0f, 0.1f};         (r, alpha, dropout)
       ds_finetune_config fc = {3};                   (epochs)
       ds_finetune(model, &lc, data, &fc, &tr);  ds_trainer_save_lora(tr, "adapter.gguf"); */
DS_API ds_status ds_finetune(const ds_model *m, const ds_lora_config *lc, const ds_sft_data *d, const ds_finetune_config *fc, ds_trainer **out);
#endif /* DS_NO_TRAIN */



#ifdef __cplusplus
}
#endif
#endif /* DEEPSEEK_H */

/* ========================================================================================== */
/*                                     IMPLEMENTATION                                          */
/* ========================================================================================== */
#if defined(DEEPSEEK_IMPLEMENTATION) && !defined(DEEPSEEK_IMPLEMENTATION_DONE_)
#define DEEPSEEK_IMPLEMENTATION_DONE_

#if defined(__MINGW32__) && !defined(__USE_MINGW_ANSI_STDIO)
#define __USE_MINGW_ANSI_STDIO 1
#endif
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
#if defined(__MINGW32__) /* its C99 printf (see __USE_MINGW_ANSI_STDIO above) knows %zu */
#define DS__FMT(a, b) __attribute__((format(gnu_printf, a, b)))
#else
#define DS__FMT(a, b) __attribute__((format(printf, a, b)))
#endif
#elif defined(_MSC_VER)
#define DS__TLS __declspec(thread)
#define DS__LIKELY(x) (x)
#define DS__UNLIKELY(x) (x)
#define DS__FMT(a, b)
#else
#define DS__TLS
#define DS__LIKELY(x) (x)
#define DS__UNLIKELY(x) (x)
#define DS__FMT(a, b)
#endif

#define DS__MIN(a, b) ((a) < (b) ? (a) : (b))
#define DS__MAX(a, b) ((a) > (b) ? (a) : (b))
#define DS__CAST(T, x) ((T)(x))   /* a cast that C++ also accepts (void* conversions) */

#if defined(__GNUC__) && !defined(__clang__)
/* GCC 12 reports the deliberately undefined pass-through operands inside its own AVX-512
   intrinsic headers as "may be used uninitialized" once they are inlined into C++ code. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

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

static void ds__log(ds_log_level level, const char *fmt, ...) DS__FMT(2, 3);
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
static char *ds__strdup(const char *s) {
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
/* A loop is published as one 64-bit ticket: generation (20 bits) | task count n (22 bits) |
   next index (22 bits). Threads claim an index with a compare-and-swap on the whole ticket, so
   a worker that wakes late, after its loop ended, fails the claim instead of touching the next
   loop's fields, and the caller never waits for a worker that has nothing to do: it returns
   as soon as every task has finished, whoever ran them (on a busy machine, often all by
   itself). Workers spin briefly on the ticket before sleeping on a condition variable: a
   decode step runs hundreds of short parallel loops, and a futex wake per loop would cost more
   than the loop itself. */
#define DS__ATOMIC_LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define DS__ATOMIC_STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define DS__ATOMIC_ADD(p, v) __atomic_fetch_add((p), (v), __ATOMIC_ACQ_REL)
#define DS__TICKET_BITS 22
#define DS__TICKET_MAX ((1 << DS__TICKET_BITS) - 1)
#define DS__TICKET_GEN(t) ((unsigned)((t) >> (2 * DS__TICKET_BITS)))
#define DS__TICKET_N(t) ((int)(((t) >> DS__TICKET_BITS) & DS__TICKET_MAX))
#define DS__TICKET_I(t) ((int)((t) & DS__TICKET_MAX))

#if (!defined(DS_NO_THREADS) && !defined(_WIN32)) || !defined(DS_NO_TRAIN)   /* spin-waits: the pool, the GEMM's slots */
static void ds__cpu_relax(void) {
#if defined(DS__X86_SIMD)
    _mm_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}
#endif

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
    /* the current loop: written by the caller before it publishes the ticket, and not again
       until every task of the loop has finished */
    ds_task_fn task;
    void *ctx;
    uint64_t ticket;   /* gen | n | next (atomic) */
    int done;          /* tasks of the current loop finished (atomic) */
    int quit;
};

#if !defined(DS_NO_THREADS) && !defined(_WIN32)
/* Claims the next index of the loop of generation gen; -1 when that loop has none left. */
static int ds__pool_claim(ds_pool *p, unsigned gen) {
    uint64_t t = DS__ATOMIC_LOAD(&p->ticket);
    for (;;) {
        if (DS__TICKET_GEN(t) != gen || DS__TICKET_I(t) >= DS__TICKET_N(t)) return -1;
        if (__atomic_compare_exchange_n(&p->ticket, &t, t + 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) return DS__TICKET_I(t);
    }
}

static void ds__pool_work(ds_pool *p, unsigned gen, int n) {
    int i;
    while ((i = ds__pool_claim(p, gen)) >= 0) {
        p->task(p->ctx, i, n);
        DS__ATOMIC_ADD(&p->done, 1);
    }
}

static void *ds__pool_main(void *arg) {
    ds_pool *p = (ds_pool *)arg;
    unsigned seen = 0;
    for (;;) {
        uint64_t t;
        int spins = 0;
        while (DS__TICKET_GEN(t = DS__ATOMIC_LOAD(&p->ticket)) == seen && !DS__ATOMIC_LOAD(&p->quit)) {
            if (++spins < 20000) {
                ds__cpu_relax();
                continue;
            }
            pthread_mutex_lock(&p->mu);
            p->sleeping++;
            while (DS__TICKET_GEN(DS__ATOMIC_LOAD(&p->ticket)) == seen && !DS__ATOMIC_LOAD(&p->quit)) pthread_cond_wait(&p->cv, &p->mu);
            p->sleeping--;
            pthread_mutex_unlock(&p->mu);
        }
        if (DS__ATOMIC_LOAD(&p->quit)) return NULL;
        seen = DS__TICKET_GEN(t);
        ds__pool_work(p, seen, DS__TICKET_N(t));
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

DS_API void ds_pool_free(ds_pool *p) {
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
    if (!p || p->n_threads <= 1 || n == 1 || n > DS__TICKET_MAX) { /* (over 4M tasks: inline) */
        for (i = 0; i < n; i++) task(ctx, i, n);
        return;
    }
#if !defined(DS_NO_THREADS) && !defined(_WIN32)
    {
        uint64_t t = DS__ATOMIC_LOAD(&p->ticket);
        unsigned gen = (DS__TICKET_GEN(t) + 1) & ((1u << (64 - 2 * DS__TICKET_BITS)) - 1);
        p->task = task;
        p->ctx = ctx;
        DS__ATOMIC_STORE(&p->done, 0);
        pthread_mutex_lock(&p->mu);
        DS__ATOMIC_STORE(&p->ticket, ((uint64_t)gen << (2 * DS__TICKET_BITS)) | ((uint64_t)n << DS__TICKET_BITS));
        if (p->sleeping > 0) pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
        ds__pool_work(p, gen, n);
        while (DS__ATOMIC_LOAD(&p->done) < n) ds__cpu_relax();
    }
#endif
}

// >>util
/* ---- growable byte buffer ---------------------------------------------------------------- */
/* A byte buffer that doubles as it grows; `oom` latches the first failed allocation, so a
   writer may append freely and check once at the end. */
typedef struct ds__buf {
    char *p;
    size_t n, cap;
    int oom;
} ds__buf;

static int ds__buf_reserve(ds__buf *b, size_t extra) {
    char *np;
    size_t cap;
    if (b->oom) return 0;
    if (extra <= b->cap - b->n) return 1;
    if (extra > SIZE_MAX / 2 - b->n) {
        b->oom = 1;
        return 0;
    }
    cap = DS__MAX(b->cap * 2, b->n + extra + 64);
    np = DS__CAST(char *, ds_alloc(cap));
    if (!np) {
        b->oom = 1;
        return 0;
    }
    if (b->n) memcpy(np, b->p, b->n);
    ds_free(b->p);
    b->p = np;
    b->cap = cap;
    return 1;
}
static void ds__buf_put(ds__buf *b, const void *s, size_t n) {
    if (!n || !ds__buf_reserve(b, n)) return;
    memcpy(b->p + b->n, s, n);
    b->n += n;
}
static void ds__buf_putc(ds__buf *b, char c) { ds__buf_put(b, &c, 1); }
static void ds__buf_puts(ds__buf *b, const char *s) { ds__buf_put(b, s, strlen(s)); }
static void ds__buf_printf(ds__buf *b, const char *fmt, ...) DS__FMT(2, 3);
static void ds__buf_printf(ds__buf *b, const char *fmt, ...) {
    char tmp[256];
    int k;
    va_list ap;
    va_start(ap, fmt);
    k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (k < 0) return;
    if ((size_t)k < sizeof tmp) {
        ds__buf_put(b, tmp, (size_t)k);
        return;
    }
    if (!ds__buf_reserve(b, (size_t)k + 1)) return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->n, (size_t)k + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)k;
}
static void ds__buf_free(ds__buf *b) {
    ds_free(b->p);
    memset(b, 0, sizeof *b);
}

/* 64-bit hash of a byte string (FNV-1a steps folded through a final mix). */
static uint64_t ds__hash_bytes(const void *data, size_t n) {
    const unsigned char *s = DS__CAST(const unsigned char *, data);
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    size_t i;
    for (i = 0; i < n; i++) h = (h ^ s[i]) * UINT64_C(0x100000001b3);
    h ^= h >> 32;
    h *= UINT64_C(0xd6e8feb86659fd93);
    return h ^ (h >> 32);
}
static uint64_t ds__hash_u64(uint64_t x) {
    x ^= x >> 33;
    x *= UINT64_C(0xff51afd7ed558ccd);
    x ^= x >> 33;
    x *= UINT64_C(0xc4ceb9fe1a85ec53);
    return x ^ (x >> 33);
}

/* XXH64 (xxHash's 64-bit hash, fed in pieces): the data checksum of the GGUF files training
   writes and the vocabulary fingerprint of token shards. 32-byte stripes in four lanes, then
   the tail and a final avalanche, as the reference implementation does. */
#define DS__XXP1 UINT64_C(11400714785074694791)
#define DS__XXP2 UINT64_C(14029467366897019727)
#define DS__XXP3 UINT64_C(1609587929392839161)
#define DS__XXP4 UINT64_C(9650029242287828579)
#define DS__XXP5 UINT64_C(2870177450012600261)
typedef struct ds__xxh64 {
    uint64_t v[4], total, seed;
    uint8_t mem[32];
    size_t n_mem;
} ds__xxh64;
static uint64_t ds__rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
static uint64_t ds__xx_le64(const uint8_t *p) {
    uint64_t v = 0;
    int i;
    for (i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}
static uint64_t ds__xx_round(uint64_t acc, uint64_t in) { return ds__rotl64(acc + in * DS__XXP2, 31) * DS__XXP1; }
static void ds__xxh64_init(ds__xxh64 *h, uint64_t seed) {
    memset(h, 0, sizeof *h);
    h->seed = seed;
    h->v[0] = seed + DS__XXP1 + DS__XXP2;
    h->v[1] = seed + DS__XXP2;
    h->v[2] = seed;
    h->v[3] = seed - DS__XXP1;
}
static void ds__xxh64_stripe(ds__xxh64 *h, const uint8_t *p) {
    int i;
    for (i = 0; i < 4; i++) h->v[i] = ds__xx_round(h->v[i], ds__xx_le64(p + 8 * i));
}
static void ds__xxh64_update(ds__xxh64 *h, const void *data, size_t n) {
    const uint8_t *p = DS__CAST(const uint8_t *, data);
    if (!n) return;
    h->total += n;
    if (h->n_mem) {
        size_t k = DS__MIN(n, 32 - h->n_mem);
        memcpy(h->mem + h->n_mem, p, k);
        h->n_mem += k;
        p += k;
        n -= k;
        if (h->n_mem < 32) return;
        ds__xxh64_stripe(h, h->mem);
        h->n_mem = 0;
    }
    for (; n >= 32; p += 32, n -= 32) ds__xxh64_stripe(h, p);
    if (n) memcpy(h->mem, p, n);
    h->n_mem = n;
}
static uint64_t ds__xxh64_digest(const ds__xxh64 *h) {
    const uint8_t *p = h->mem, *end = h->mem + h->n_mem;
    uint64_t r;
    int i;
    if (h->total >= 32) {
        r = ds__rotl64(h->v[0], 1) + ds__rotl64(h->v[1], 7) + ds__rotl64(h->v[2], 12) + ds__rotl64(h->v[3], 18);
        for (i = 0; i < 4; i++) r = (r ^ ds__xx_round(0, h->v[i])) * DS__XXP1 + DS__XXP4;
    } else {
        r = h->seed + DS__XXP5;
    }
    r += h->total;
    for (; p + 8 <= end; p += 8) r = ds__rotl64(r ^ ds__xx_round(0, ds__xx_le64(p)), 27) * DS__XXP1 + DS__XXP4;
    if (p + 4 <= end) {
        r = ds__rotl64(r ^ (uint64_t)(p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24) * DS__XXP1, 23) * DS__XXP2 + DS__XXP3;
        p += 4;
    }
    for (; p < end; p++) r = ds__rotl64(r ^ *p * DS__XXP5, 11) * DS__XXP1;
    r ^= r >> 33;
    r *= DS__XXP2;
    r ^= r >> 29;
    r *= DS__XXP3;
    return r ^ (r >> 32);
}
DS_API uint64_t ds_xxh64(const void *data, size_t n, uint64_t seed) {
    ds__xxh64 h;
    ds__xxh64_init(&h, seed);
    ds__xxh64_update(&h, data, n);
    return ds__xxh64_digest(&h);
}

/* ---- UTF-8 ------------------------------------------------------------------------------- */
/* Decodes the code point at s[0..n) (n >= 1). Returns its length (1..4) when well formed
   (shortest form, no surrogate, <= U+10FFFF). Otherwise sets *cp = U+FFFD and returns minus
   the length of the "maximal subpart" that one U+FFFD replaces, as Unicode's recommended
   practice counts it (and Python's and Rust's lossy decoders do). */
static int ds__utf8_decode(const unsigned char *s, size_t n, uint32_t *cp) {
    unsigned b = s[0], lo = 0x80, hi = 0xBF;
    int len, i;
    uint32_t c;
    if (b < 0x80) {
        *cp = b;
        return 1;
    }
    if (b >= 0xC2 && b <= 0xDF) {
        len = 2;
        c = b & 0x1F;
    } else if (b >= 0xE0 && b <= 0xEF) {
        len = 3;
        c = b & 0x0F;
        if (b == 0xE0) lo = 0xA0;
        if (b == 0xED) hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
        len = 4;
        c = b & 0x07;
        if (b == 0xF0) lo = 0x90;
        if (b == 0xF4) hi = 0x8F;
    } else {
        *cp = 0xFFFD;
        return -1;
    }
    for (i = 1; i < len; i++) {
        unsigned x;
        if ((size_t)i >= n) break;
        x = s[i];
        if (x < lo || x > hi) break;
        lo = 0x80;
        hi = 0xBF;
        c = (c << 6) | (x & 0x3F);
    }
    if (i < len) {
        *cp = 0xFFFD;
        return -i;
    }
    *cp = c;
    return len;
}

/* Writes cp (<= U+10FFFF) as UTF-8; returns the byte count (1..4). */
static int ds__utf8_encode(uint32_t cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Length of the longest well-formed prefix of s[0..n). */
static size_t ds__utf8_valid_prefix(const char *s, size_t n) {
    const unsigned char *u = DS__CAST(const unsigned char *, s);
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        int k;
        if (u[i] < 0x80) {
            i++;
            continue;
        }
        k = ds__utf8_decode(u + i, n - i, &cp);
        if (k < 0) return i;
        i += (size_t)k;
    }
    return n;
}

/* The length of the sequence a lead byte starts (1..4), 0 for a byte no sequence starts with. */
static int ds__utf8_seq_len(unsigned char b) {
    if (b < 0x80) return 1;
    if (b >= 0xC2 && b <= 0xDF) return 2;
    if (b >= 0xE0 && b <= 0xEF) return 3;
    if (b >= 0xF0 && b <= 0xF4) return 4;
    return 0;
}

/* ---- JSON reader ------------------------------------------------------------------------- */
/* ds__json_parse validates a whole RFC 8259 document (UTF-8, no duplicate check) into a flat
   node array: node 0 is the root; containers link their children through `next`; an object's
   children alternate key, value. Strings stay in the source and are unescaped on demand. */
typedef enum ds__json_type {
    DS__JSON_NULL, DS__JSON_FALSE, DS__JSON_TRUE, DS__JSON_NUMBER, DS__JSON_STRING,
    DS__JSON_ARRAY, DS__JSON_OBJECT
} ds__json_type;

typedef struct ds__json_node {
    uint8_t type;     /* ds__json_type */
    uint8_t escaped;  /* string holds backslash escapes */
    uint32_t next;    /* next sibling, 0 = none (the root is nobody's sibling) */
    uint32_t n;       /* arrays: elements; objects: members; strings: raw byte length */
    uint32_t first;   /* containers: first child (0 = empty); strings: source offset */
    double num;
} ds__json_node;

typedef struct ds__json {
    const char *src;
    size_t len;
    ds__json_node *nodes;
    uint32_t n_nodes, cap;
    const char *what;   /* names the document in messages */
} ds__json;

#define DS__JSON_MAX_DEPTH 512

static ds_status ds__json_error(const ds__json *d, size_t at, const char *msg) {
    size_t i, line = 1, col = 1;
    for (i = 0; i < at && i < d->len; i++) {
        if (d->src[i] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    return ds__fail(DS_ERR_FORMAT, "%s: JSON error at line %zu column %zu: %s", d->what, line, col, msg);
}

/* appends a node; 0 when out of memory */
static int ds__json_new(ds__json *d, ds__json_type type, uint32_t *id) {
    ds__json_node *n;
    if (d->n_nodes == d->cap) {
        uint32_t cap = d->cap ? d->cap * 2 : 256;
        ds__json_node *nn;
        if (d->cap >= UINT32_MAX / 2) return 0;
        nn = DS__CAST(ds__json_node *, ds__calloc(cap, sizeof *nn));
        if (!nn) return 0;
        if (d->n_nodes) memcpy(nn, d->nodes, d->n_nodes * sizeof *nn);
        ds_free(d->nodes);
        d->nodes = nn;
        d->cap = cap;
    }
    n = &d->nodes[d->n_nodes];
    memset(n, 0, sizeof *n);
    n->type = (uint8_t)type;
    *id = d->n_nodes++;
    return 1;
}
static ds_status ds__json_oom(const ds__json *d) { return ds__fail(DS_ERR_NO_MEMORY, "%s: out of memory", d->what); }

static size_t ds__json_ws(const ds__json *d, size_t i) {
    while (i < d->len && (d->src[i] == ' ' || d->src[i] == '\t' || d->src[i] == '\n' || d->src[i] == '\r')) i++;
    return i;
}

static int ds__json_hex4(const char *s, uint32_t *out) {
    uint32_t v = 0;
    int i;
    for (i = 0; i < 4; i++) {
        char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (uint32_t)(c - 'A' + 10);
        else return 0;
    }
    *out = v;
    return 1;
}

/* Reads the \u escape(s) at s[i] (s[i] == 'u'), joining a surrogate pair. Returns the bytes
   consumed after the backslash, 0 when malformed. */
static size_t ds__json_uescape(const char *s, size_t i, size_t len, uint32_t *cp) {
    uint32_t hi, lo;
    if (i + 5 > len || !ds__json_hex4(s + i + 1, &hi)) return 0;
    if (hi >= 0xDC00 && hi <= 0xDFFF) return 0;
    if (hi < 0xD800 || hi > 0xDBFF) {
        *cp = hi;
        return 5;
    }
    if (i + 11 > len || s[i + 5] != '\\' || s[i + 6] != 'u' || !ds__json_hex4(s + i + 7, &lo)) return 0;
    if (lo < 0xDC00 || lo > 0xDFFF) return 0;
    *cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
    return 11;
}

static ds_status ds__json_string(ds__json *d, size_t *pos, uint32_t *out) {
    size_t i = *pos + 1;
    int escaped = 0;
    uint32_t id;
    while (i < d->len && d->src[i] != '"') {
        unsigned char c = (unsigned char)d->src[i];
        if (c < 0x20) return ds__json_error(d, i, "control character in a string");
        if (c == '\\') {
            uint32_t cp;
            size_t k;
            escaped = 1;
            if (i + 1 >= d->len) break;
            switch (d->src[i + 1]) {
            case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
                i += 2;
                continue;
            case 'u':
                k = ds__json_uescape(d->src, i + 1, d->len, &cp);
                if (!k) return ds__json_error(d, i, "bad \\u escape (or a lone surrogate)");
                i += 1 + k;
                continue;
            default:
                return ds__json_error(d, i, "unknown escape in a string");
            }
        }
        i++;
    }
    if (i >= d->len) return ds__json_error(d, *pos, "unterminated string");
    if (i - *pos - 1 > UINT32_MAX) return ds__json_error(d, *pos, "string too long");
    if (!ds__json_new(d, DS__JSON_STRING, &id)) return ds__json_oom(d);
    d->nodes[id].first = (uint32_t)(*pos + 1);
    d->nodes[id].n = (uint32_t)(i - *pos - 1);
    d->nodes[id].escaped = (uint8_t)escaped;
    *pos = i + 1;
    *out = id;
    return DS_OK;
}

static ds_status ds__json_number(ds__json *d, size_t *pos, uint32_t *out) {
    size_t i = *pos, start = *pos;
    char tmp[64];
    uint32_t id;
    if (i < d->len && d->src[i] == '-') i++;
    if (i < d->len && d->src[i] == '0') i++;
    else if (i < d->len && d->src[i] >= '1' && d->src[i] <= '9') while (i < d->len && d->src[i] >= '0' && d->src[i] <= '9') i++;
    else return ds__json_error(d, start, "expected a value");
    if (i < d->len && d->src[i] == '.') {
        i++;
        if (i >= d->len || d->src[i] < '0' || d->src[i] > '9') return ds__json_error(d, i, "expected a digit after '.'");
        while (i < d->len && d->src[i] >= '0' && d->src[i] <= '9') i++;
    }
    if (i < d->len && (d->src[i] == 'e' || d->src[i] == 'E')) {
        i++;
        if (i < d->len && (d->src[i] == '+' || d->src[i] == '-')) i++;
        if (i >= d->len || d->src[i] < '0' || d->src[i] > '9') return ds__json_error(d, i, "expected a digit in the exponent");
        while (i < d->len && d->src[i] >= '0' && d->src[i] <= '9') i++;
    }
    if (!ds__json_new(d, DS__JSON_NUMBER, &id)) return ds__json_oom(d);
    if (i - start < sizeof tmp) {
        memcpy(tmp, d->src + start, i - start);
        tmp[i - start] = 0;
        d->nodes[id].num = strtod(tmp, NULL);
    } else {
        d->nodes[id].num = d->src[start] == '-' ? -HUGE_VAL : HUGE_VAL;
    }
    d->nodes[id].first = (uint32_t)start;
    d->nodes[id].n = (uint32_t)(i - start);
    *pos = i;
    *out = id;
    return DS_OK;
}

static ds_status ds__json_value(ds__json *d, size_t *pos, int depth, uint32_t *out);

/* an array or object: children are linked in order through `next` */
static ds_status ds__json_container(ds__json *d, size_t *pos, int depth, uint32_t *out) {
    int is_obj = d->src[*pos] == '{';
    char close = is_obj ? '}' : ']';
    size_t i = *pos + 1;
    uint32_t id, last = 0, count = 0;
    ds_status s;
    if (depth > DS__JSON_MAX_DEPTH) return ds__json_error(d, *pos, "nesting too deep");
    if (!ds__json_new(d, is_obj ? DS__JSON_OBJECT : DS__JSON_ARRAY, &id)) return ds__json_oom(d);
    i = ds__json_ws(d, i);
    if (i < d->len && d->src[i] == close) {
        *pos = i + 1;
        *out = id;
        return DS_OK;
    }
    for (;;) {
        uint32_t child;
        i = ds__json_ws(d, i);
        if (is_obj) {
            uint32_t key;
            if (i >= d->len || d->src[i] != '"') return ds__json_error(d, i, "expected a string key");
            if ((s = ds__json_string(d, &i, &key)) != DS_OK) return s;
            if (last) d->nodes[last].next = key;
            else d->nodes[id].first = key;
            last = key;
            i = ds__json_ws(d, i);
            if (i >= d->len || d->src[i] != ':') return ds__json_error(d, i, "expected ':'");
            i = ds__json_ws(d, i + 1);
        }
        if ((s = ds__json_value(d, &i, depth + 1, &child)) != DS_OK) return s;
        if (last) d->nodes[last].next = child;
        else d->nodes[id].first = child;
        last = child;
        count++;
        i = ds__json_ws(d, i);
        if (i < d->len && d->src[i] == ',') {
            i++;
            continue;
        }
        if (i < d->len && d->src[i] == close) break;
        return ds__json_error(d, i, is_obj ? "expected ',' or '}'" : "expected ',' or ']'");
    }
    d->nodes[id].n = count;
    *pos = i + 1;
    *out = id;
    return DS_OK;
}

static ds_status ds__json_literal(ds__json *d, size_t *pos, const char *word, ds__json_type type, uint32_t *out) {
    size_t k = strlen(word);
    if (d->len - *pos < k || memcmp(d->src + *pos, word, k) != 0) return ds__json_error(d, *pos, "expected a value");
    if (!ds__json_new(d, type, out)) return ds__json_oom(d);
    *pos += k;
    return DS_OK;
}

static ds_status ds__json_value(ds__json *d, size_t *pos, int depth, uint32_t *out) {
    size_t i = ds__json_ws(d, *pos);
    ds_status s;
    *pos = i;
    if (i >= d->len) return ds__json_error(d, i, "unexpected end of input");
    switch (d->src[i]) {
    case '{': case '[': s = ds__json_container(d, pos, depth, out); break;
    case '"': s = ds__json_string(d, pos, out); break;
    case 't': s = ds__json_literal(d, pos, "true", DS__JSON_TRUE, out); break;
    case 'f': s = ds__json_literal(d, pos, "false", DS__JSON_FALSE, out); break;
    case 'n': s = ds__json_literal(d, pos, "null", DS__JSON_NULL, out); break;
    default: s = ds__json_number(d, pos, out); break;
    }
    return s;
}

static void ds__json_free(ds__json *d) {
    ds_free(d->nodes);
    memset(d, 0, sizeof *d);
}

/* Parses src[0..len) (not NUL-terminated) into d; `what` names the document in messages. */
static ds_status ds__json_parse(const char *src, size_t len, const char *what, ds__json *d) {
    size_t pos = 0, bad;
    uint32_t root;
    ds_status s;
    memset(d, 0, sizeof *d);
    d->src = src;
    d->len = len;
    d->what = what ? what : "json";
    if (len >= UINT32_MAX) return ds__fail(DS_ERR_UNSUPPORTED, "%s: JSON documents over 4 GiB are not supported", d->what);
    bad = ds__utf8_valid_prefix(src, len);
    if (bad < len) {
        s = ds__json_error(d, bad, "invalid UTF-8");
        return s;
    }
    if (len >= 3 && memcmp(src, "\xEF\xBB\xBF", 3) == 0) pos = 3;
    s = ds__json_value(d, &pos, 0, &root);
    if (s == DS_OK && ds__json_ws(d, pos) != len) s = ds__json_error(d, ds__json_ws(d, pos), "trailing characters after the document");
    if (s != DS_OK) ds__json_free(d);
    return s;
}


/* Unescapes string node i into out (which needs the node's raw length n bytes); returns the
   length. Escapes were validated by the parser. */
static size_t ds__json_str(const ds__json *d, uint32_t i, char *out) {
    const ds__json_node *nd = &d->nodes[i];
    const char *s = d->src + nd->first;
    size_t k = 0, j = 0;
    if (!nd->escaped) {
        memcpy(out, s, nd->n);
        return nd->n;
    }
    while (j < nd->n) {
        char c = s[j];
        uint32_t cp;
        if (c != '\\') {
            out[k++] = c;
            j++;
            continue;
        }
        switch (s[j + 1]) {
        case 'b': out[k++] = '\b'; break;
        case 'f': out[k++] = '\f'; break;
        case 'n': out[k++] = '\n'; break;
        case 'r': out[k++] = '\r'; break;
        case 't': out[k++] = '\t'; break;
        case 'u':
            j += 1 + ds__json_uescape(s, j + 1, nd->n, &cp);
            k += (size_t)ds__utf8_encode(cp, out + k);
            continue;
        default: out[k++] = s[j + 1]; break;
        }
        j += 2;
    }
    return k;
}

/* 1 when string node i equals the NUL-terminated key */
static int ds__json_str_eq(const ds__json *d, uint32_t i, const char *key) {
    const ds__json_node *nd = &d->nodes[i];
    char tmp[256];
    size_t k = strlen(key), n;
    if (nd->type != DS__JSON_STRING) return 0;
    if (!nd->escaped) return nd->n == k && memcmp(d->src + nd->first, key, k) == 0;
    if (nd->n > sizeof tmp) return 0;
    n = ds__json_str(d, i, tmp);
    return n == k && memcmp(tmp, key, k) == 0;
}

/* The value of member `key` of object node obj; 0 when obj is not an object or lacks it. */
static uint32_t ds__json_get(const ds__json *d, uint32_t obj, const char *key) {
    uint32_t k;
    if (d->nodes[obj].type != DS__JSON_OBJECT) return 0;
    for (k = d->nodes[obj].first; k; k = d->nodes[d->nodes[k].next].next)
        if (ds__json_str_eq(d, k, key)) return d->nodes[k].next;
    return 0;
}

/* ---- JSON writer ------------------------------------------------------------------------- */
/* Appends s[0..n) as a quoted JSON string: escapes quotes, backslashes and control
   characters; other bytes (UTF-8) pass through. */
static void ds__json_write_str(ds__buf *b, const char *s, size_t n) {
    size_t i, run = 0;
    ds__buf_putc(b, '"');
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        ds__buf_put(b, s + run, i - run);
        run = i + 1;
        switch (c) {
        case '"': ds__buf_puts(b, "\\\""); break;
        case '\\': ds__buf_puts(b, "\\\\"); break;
        case '\n': ds__buf_puts(b, "\\n"); break;
        case '\r': ds__buf_puts(b, "\\r"); break;
        case '\t': ds__buf_puts(b, "\\t"); break;
        default: ds__buf_printf(b, "\\u%04x", c); break;
        }
    }
    ds__buf_put(b, s + run, n - run);
    ds__buf_putc(b, '"');
}

// >>dtype
typedef struct ds__type_traits {
    const char *name;
    uint16_t block_elems, block_bytes;
} ds__type_traits;

/* ggml's block layouts: Q4_0 {f16 d; u8 qs[16]}, Q4_1 {f16 d, m; u8 qs[16]}, Q5_0 {f16 d;
   u8 qh[4]; u8 qs[16]}, Q5_1 {f16 d, m; u8 qh[4]; u8 qs[16]}, Q8_0 {f16 d;
   i8 qs[32]}, Q8_1 {f16 d, s; i8 qs[32]}, Q4_K {f16 d, dmin; u8 scales[12]; u8 qs[128]},
   Q5_K {f16 d, dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]},
   Q6_K {u8 ql[128], qh[64]; i8 scales[16]; f16 d}, Q8_K {f32 d; i8 qs[256]; i16 bsums[16]},
   IQ4_NL {f16 d; u8 qs[16]} */
static ds__type_traits ds__type_info(ds_type t) {
    ds__type_traits r = {"?", 0, 0};
    switch (t) {
    case DS_TYPE_F32: r.name = "F32"; r.block_elems = 1; r.block_bytes = 4; break;
    case DS_TYPE_F16: r.name = "F16"; r.block_elems = 1; r.block_bytes = 2; break;
    case DS_TYPE_BF16: r.name = "BF16"; r.block_elems = 1; r.block_bytes = 2; break;
    case DS_TYPE_Q4_0: r.name = "Q4_0"; r.block_elems = 32; r.block_bytes = 18; break;
    case DS_TYPE_Q4_1: r.name = "Q4_1"; r.block_elems = 32; r.block_bytes = 20; break;
    case DS_TYPE_Q5_0: r.name = "Q5_0"; r.block_elems = 32; r.block_bytes = 22; break;
    case DS_TYPE_Q5_1: r.name = "Q5_1"; r.block_elems = 32; r.block_bytes = 24; break;
    case DS_TYPE_Q8_0: r.name = "Q8_0"; r.block_elems = 32; r.block_bytes = 34; break;
    case DS_TYPE_Q8_1: r.name = "Q8_1"; r.block_elems = 32; r.block_bytes = 36; break;
    case DS_TYPE_Q4_K: r.name = "Q4_K"; r.block_elems = 256; r.block_bytes = 144; break;
    case DS_TYPE_Q5_K: r.name = "Q5_K"; r.block_elems = 256; r.block_bytes = 176; break;
    case DS_TYPE_Q6_K: r.name = "Q6_K"; r.block_elems = 256; r.block_bytes = 210; break;
    case DS_TYPE_Q8_K: r.name = "Q8_K"; r.block_elems = 256; r.block_bytes = 292; break;
    case DS_TYPE_IQ4_NL: r.name = "IQ4_NL"; r.block_elems = 32; r.block_bytes = 18; break;
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

/* ---- f16 / bf16 conversions -------------------------------------------------------------- */
static uint32_t ds__f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static float ds__bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* IEEE binary16 -> binary32, exact for every pattern (subnormals normalised, NaN payload kept) */
static float ds__f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0x1f) return ds__bits_f32(sign | 0x7f800000u | (m << 13));
    if (e == 0) {
        int ex = 1;
        if (m == 0) return ds__bits_f32(sign);
        while (!(m & 0x400u)) {
            m <<= 1;
            ex--;
        }
        return ds__bits_f32(sign | ((uint32_t)(ex + 112) << 23) | ((m & 0x3ffu) << 13));
    }
    return ds__bits_f32(sign | ((e + 112) << 23) | (m << 13));
}

/* binary32 -> binary16, round to nearest even; NaN stays NaN (quietened, top payload bits kept,
   as the F16C instruction does) */
static uint16_t ds__f32_to_f16(float f) {
    uint32_t u = ds__f32_bits(f), sign = (u >> 16) & 0x8000u, a = u & 0x7fffffffu;
    uint32_t e = a >> 23, m = a & 0x7fffffu, h, rem;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((m >> 13) & 0x3ffu));
    if (a >= 0x47800000u) return (uint16_t)(sign | 0x7c00u); /* >= 2^16 (or inf): overflows */
    if (a < 0x38800000u) { /* below 2^-14: a half subnormal (or zero) */
        uint32_t shift = 126 - e, half;
        if (shift > 24) return (uint16_t)sign;
        m |= 0x800000u;
        h = m >> shift;
        rem = m & ((1u << shift) - 1);
        half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1))) h++;
        return (uint16_t)(sign | h);
    }
    h = ((e - 112) << 10) | (m >> 13);
    rem = m & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) h++; /* a carry may reach inf: correct */
    return (uint16_t)(sign | h);
}

static float ds__bf16_to_f32(uint16_t b) { return ds__bits_f32((uint32_t)b << 16); }

/* round to nearest even; NaN is quietened so that truncation cannot turn it into inf */
static uint16_t ds__f32_to_bf16(float f) {
    uint32_t u = ds__f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

/* ---- quant block layouts (ggml's, byte for byte) ----------------------------------------- */
#define DS__QK 32    /* elements per Q4_0 / Q4_1 / Q8_0 / Q8_1 block */
#define DS__QK_K 256 /* elements per K-quant super-block */
typedef struct { uint16_t d; uint8_t qs[16]; } ds__block_q4_0;          /* x = d * (q - 8) */
typedef struct { uint16_t d, m; uint8_t qs[16]; } ds__block_q4_1;       /* x = d * q + m */
/* Q5: element j's low 4 bits as in Q4 (qs[j % 16], low nibble for j < 16), bit 4 is bit j of qh */
typedef struct { uint16_t d; uint8_t qh[4]; uint8_t qs[16]; } ds__block_q5_0;    /* x = d * (q - 16) */
typedef struct { uint16_t d, m; uint8_t qh[4]; uint8_t qs[16]; } ds__block_q5_1; /* x = d * q + m */
typedef struct { uint16_t d; int8_t qs[32]; } ds__block_q8_0;           /* x = d * q */
typedef struct { uint16_t d, s; int8_t qs[32]; } ds__block_q8_1;        /* s = d * sum(q) */
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qs[128]; } ds__block_q4_k;
/* Q5_K: Q4_K's scales and nibbles; bit 4 of element 64 * k + l is bit 2k of qh[l] (l < 32),
   of element 64 * k + 32 + l bit 2k + 1 */
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qh[32]; uint8_t qs[128]; } ds__block_q5_k;
typedef struct { uint8_t ql[128], qh[64]; int8_t scales[16]; uint16_t d; } ds__block_q6_k;
typedef struct { float d; int8_t qs[256]; int16_t bsums[16]; } ds__block_q8_k;
/* IQ4_NL: Q4_0's nibble order, x = d * ds__iq4nl_values[q] (a non-uniform 4-bit grid) */
typedef struct { uint16_t d; uint8_t qs[16]; } ds__block_iq4_nl;
static const int8_t ds__iq4nl_values[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
/* compile-time size checks: a negative array size fails the build */
typedef char ds__check_block_sizes[(sizeof(ds__block_q4_0) == 18 && sizeof(ds__block_q4_1) == 20 &&
                                    sizeof(ds__block_q8_0) == 34 && sizeof(ds__block_q8_1) == 36 &&
                                    sizeof(ds__block_q4_k) == 144 && sizeof(ds__block_q6_k) == 210 &&
                                    sizeof(ds__block_q8_k) == 292 && sizeof(ds__block_q5_0) == 22 &&
                                    sizeof(ds__block_q5_1) == 24 && sizeof(ds__block_q5_k) == 176 &&
                                    sizeof(ds__block_iq4_nl) == 18) ? 1 : -1];

/* C's roundf (halves away from zero) without libm's rounding-mode subtleties */
static int ds__round_away(float v) {
    float t = (float)(int)v, r = v - t; /* exact: |v| < 2^23 here */
    if (r >= 0.5f) t += 1.0f;
    else if (r <= -0.5f) t -= 1.0f;
    return (int)t;
}
/* nearest integer, halves to even (|v| < 2^22) */
static int ds__round_even(float v) {
    float s = v + 12582912.0f; /* 1.5 * 2^23: the sum's low mantissa bits are the rounded integer */
    return (int)(ds__f32_bits(s) & 0x007fffffu) - 0x00400000;
}

/* ---- reference quantizers (ggml-compatible output) --------------------------------------- */
static void ds__quantize_q8_0(const float *x, ds__block_q8_0 *y, int64_t nb) {
    int64_t i;
    int j;
    for (i = 0; i < nb; i++, x += DS__QK) {
        float amax = 0.0f, d, id;
        for (j = 0; j < DS__QK; j++) amax = DS__MAX(amax, fabsf(x[j]));
        d = amax / 127.0f;
        id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = ds__f32_to_f16(d);
        for (j = 0; j < DS__QK; j++) y[i].qs[j] = (int8_t)ds__round_away(x[j] * id);
    }
}

static void ds__quantize_q8_1(const float *x, ds__block_q8_1 *y, int64_t nb) {
    int64_t i;
    int j;
    for (i = 0; i < nb; i++, x += DS__QK) {
        float amax = 0.0f, d, id;
        int sum = 0;
        for (j = 0; j < DS__QK; j++) amax = DS__MAX(amax, fabsf(x[j]));
        d = amax / 127.0f;
        id = d != 0.0f ? 1.0f / d : 0.0f;
        for (j = 0; j < DS__QK; j++) {
            int q = ds__round_away(x[j] * id);
            y[i].qs[j] = (int8_t)q;
            sum += q;
        }
        y[i].d = ds__f32_to_f16(d);
        y[i].s = ds__f32_to_f16((float)sum * d);
    }
}

/* Activation rows for the integer dots: Q8_0 / Q8_1 blocks with the multiplier 127 / amax and
   halves rounded to even, as llama.cpp's SIMD builds quantize activations at run time (its
   file quantizers above use 1 / d and round halves away from zero). Matching this bit for bit
   is what lets logits agree with llama.cpp's to the last bit (design notes, "numerics"). */
static void ds__quantize_act_q8(const float *x, void *dst, int64_t nb, int q8_1) {
    int64_t i;
    int j;
    for (i = 0; i < nb; i++, x += DS__QK) {
        float amax = 0.0f, d, id;
        int8_t *qs = q8_1 ? DS__CAST(ds__block_q8_1 *, dst)[i].qs : DS__CAST(ds__block_q8_0 *, dst)[i].qs;
        int sum = 0;
        for (j = 0; j < DS__QK; j++) amax = DS__MAX(amax, fabsf(x[j]));
        d = amax / 127.0f;
        id = amax != 0.0f ? 127.0f / amax : 0.0f;
        for (j = 0; j < DS__QK; j++) {
            qs[j] = (int8_t)ds__round_even(x[j] * id);
            sum += qs[j];
        }
        if (q8_1) {
            DS__CAST(ds__block_q8_1 *, dst)[i].d = ds__f32_to_f16(d);
            DS__CAST(ds__block_q8_1 *, dst)[i].s = ds__f32_to_f16((float)sum * d);
        } else {
            DS__CAST(ds__block_q8_0 *, dst)[i].d = ds__f32_to_f16(d);
        }
    }
}

/* the scans the 4- and 5-bit quantizers share: the signed value of largest magnitude in a
   block (the first one, for the symmetric types) and the block's range (for the offset types) */
static float ds__block_signed_max(const float *x) {
    float amax = 0.0f, max = 0.0f;
    int j;
    for (j = 0; j < DS__QK; j++) {
        if (fabsf(x[j]) > amax) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    return max;
}
static void ds__block_range(const float *x, float *min, float *max) {
    int j;
    *min = FLT_MAX;
    *max = -FLT_MAX;
    for (j = 0; j < DS__QK; j++) {
        *min = DS__MIN(*min, x[j]);
        *max = DS__MAX(*max, x[j]);
    }
}

static void ds__quantize_q4_0(const float *x, ds__block_q4_0 *y, int64_t nb) {
    int64_t i;
    int j;
    for (i = 0; i < nb; i++, x += DS__QK) {
        float d = ds__block_signed_max(x) / -8.0f, id;
        id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = ds__f32_to_f16(d);
        for (j = 0; j < DS__QK / 2; j++) {
            int q0 = DS__MIN(15, (int)(x[j] * id + 8.5f));
            int q1 = DS__MIN(15, (int)(x[j + DS__QK / 2] * id + 8.5f));
            y[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

static void ds__quantize_q4_1(const float *x, ds__block_q4_1 *y, int64_t nb) {
    int64_t i;
    int j;
    for (i = 0; i < nb; i++, x += DS__QK) {
        float min, max, d, id;
        ds__block_range(x, &min, &max);
        d = (max - min) / 15.0f;
        id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = ds__f32_to_f16(d);
        y[i].m = ds__f32_to_f16(min);
        for (j = 0; j < DS__QK / 2; j++) {
            int q0 = DS__MIN(15, (int)((x[j] - min) * id + 0.5f));
            int q1 = DS__MIN(15, (int)((x[j + DS__QK / 2] - min) * id + 0.5f));
            y[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

/* Q5 blocks from 32 values each: q (0..31) into the nibbles and the qh bits */
static void ds__q5_pack(const int *q, uint8_t *qh, uint8_t *qs) {
    uint32_t h = 0;
    int j;
    for (j = 0; j < 16; j++) {
        qs[j] = (uint8_t)((q[j] & 0xf) | ((q[j + 16] & 0xf) << 4));
        h |= (uint32_t)(q[j] >> 4) << j | (uint32_t)(q[j + 16] >> 4) << (j + 16);
    }
    for (j = 0; j < 4; j++) qh[j] = (uint8_t)(h >> (8 * j));
}

/* q = d * x + 16 with d = max / -16, max the signed extreme (first one), truncated, at most 31 */
static void ds__quantize_q5_0(const float *x, ds__block_q5_0 *y, int64_t nb) {
    int64_t i;
    int j, q[DS__QK];
    for (i = 0; i < nb; i++, x += DS__QK) {
        float d = ds__block_signed_max(x) / -16.0f, id;
        id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = ds__f32_to_f16(d);
        for (j = 0; j < DS__QK; j++) q[j] = DS__MIN(31, (int)(x[j] * id + 16.5f));
        ds__q5_pack(q, y[i].qh, y[i].qs);
    }
}

static void ds__quantize_q5_1(const float *x, ds__block_q5_1 *y, int64_t nb) {
    int64_t i;
    int j, q[DS__QK];
    for (i = 0; i < nb; i++, x += DS__QK) {
        float min, max, d, id;
        ds__block_range(x, &min, &max);
        d = (max - min) / 31.0f;
        id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = ds__f32_to_f16(d);
        y[i].m = ds__f32_to_f16(min);
        for (j = 0; j < DS__QK; j++) q[j] = DS__MIN(31, (int)((x[j] - min) * id + 0.5f));
        ds__q5_pack(q, y[i].qh, y[i].qs);
    }
}

/* the 32 values (0..31) of a Q5 block */
static void ds__q5_unpack(const uint8_t *qh, const uint8_t *qs, int *q) {
    uint32_t h = (uint32_t)qh[0] | (uint32_t)qh[1] << 8 | (uint32_t)qh[2] << 16 | (uint32_t)qh[3] << 24;
    int j;
    for (j = 0; j < 16; j++) {
        q[j] = (qs[j] & 0xf) | (int)((h >> j) & 1) << 4;
        q[j + 16] = (qs[j] >> 4) | (int)((h >> (j + 16)) & 1) << 4;
    }
}

/* Q8_K: the signed extreme maps to -127; block sums of 16 serve the K-quants' min terms */
static void ds__quantize_q8_k(const float *x, ds__block_q8_k *y, int64_t nb) {
    int64_t i;
    int j;
    for (i = 0; i < nb; i++, x += DS__QK_K) {
        float amax = 0.0f, max = 0.0f, iscale;
        for (j = 0; j < DS__QK_K; j++) {
            if (fabsf(x[j]) > amax) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        }
        memset(&y[i], 0, sizeof y[i]);
        if (amax == 0.0f) continue;
        iscale = -127.0f / max;
        for (j = 0; j < DS__QK_K; j++) {
            int q = DS__MIN(127, ds__round_even(iscale * x[j]));
            y[i].qs[j] = (int8_t)q;
            y[i].bsums[j / 16] = (int16_t)(y[i].bsums[j / 16] + q);
        }
        y[i].d = 1.0f / iscale;
    }
}

/* ---- K-quant quantizers (ggml's quantize_row_*_ref) -------------------------------------- */
/* weighted least-squares scale for n values on the signed grid [-nmax, nmax - 1], weights w
   (NULL: x^2); L gets q + nmax. ggml's make_qx_quants with rmse_type 1: the scale -nmax / max,
   then 18 nearby grid stretches, keeping the one with the best sum(w x l)^2 / sum(w l^2). */
static float ds__make_qx_quants(int n, int nmax, const float *x, int8_t *L, const float *w) {
    float max = 0.0f, amax = 0.0f, iscale, sumlx = 0.0f, suml2 = 0.0f, scale, best;
    int i, is;
    for (i = 0; i < n; i++) {
        if (fabsf(x[i]) > amax) {
            amax = fabsf(x[i]);
            max = x[i];
        }
    }
    if (amax < 1e-15f) {
        for (i = 0; i < n; i++) L[i] = 0;
        return 0.0f;
    }
    iscale = (float)-nmax / max;
    for (i = 0; i < n; i++) {
        int l = DS__MAX(-nmax, DS__MIN(nmax - 1, ds__round_even(iscale * x[i])));
        float wi = w ? w[i] : x[i] * x[i];
        L[i] = (int8_t)(l + nmax);
        sumlx += wi * x[i] * (float)l;
        suml2 += wi * (float)l * (float)l;
    }
    scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
    best = scale * sumlx;
    for (is = -9; is <= 9; is++) {
        if (is == 0) continue;
        iscale = -((float)nmax + 0.1f * (float)is) / max;
        sumlx = suml2 = 0.0f;
        for (i = 0; i < n; i++) {
            int l = DS__MAX(-nmax, DS__MIN(nmax - 1, ds__round_even(iscale * x[i])));
            float wi = w ? w[i] : x[i] * x[i];
            sumlx += wi * x[i] * (float)l;
            suml2 += wi * (float)l * (float)l;
        }
        if (suml2 > 0.0f && sumlx * sumlx > best * suml2) {
            for (i = 0; i < n; i++) L[i] = (int8_t)(nmax + DS__MAX(-nmax, DS__MIN(nmax - 1, ds__round_even(iscale * x[i]))));
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* Q6_K: a scale per 16 values by ds__make_qx_quants, the 16 scales as int8 of one f16 d.
   qw: optional importance per value (NULL: ggml's reference), then the weights themselves. */
static void ds__quantize_q6_k(const float *x, ds__block_q6_k *y, int64_t nb, const float *qw) {
    int64_t i;
    int8_t L[DS__QK_K];
    float scales[DS__QK_K / 16];
    int ib, j, l;
    for (i = 0; i < nb; i++, x += DS__QK_K) {
        float max_scale = 0.0f, max_abs = 0.0f, iscale;
        for (ib = 0; ib < DS__QK_K / 16; ib++) {
            scales[ib] = ds__make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib, qw ? qw + i * DS__QK_K + 16 * ib : NULL);
            if (fabsf(scales[ib]) > max_abs) {
                max_abs = fabsf(scales[ib]);
                max_scale = scales[ib];
            }
        }
        memset(&y[i], 0, sizeof y[i]);
        if (max_abs < 1e-15f) continue;
        iscale = -128.0f / max_scale;
        y[i].d = ds__f32_to_f16(1.0f / iscale);
        for (ib = 0; ib < DS__QK_K / 16; ib++) y[i].scales[ib] = (int8_t)DS__MIN(127, ds__round_even(iscale * scales[ib]));
        for (j = 0; j < DS__QK_K / 16; j++) {
            float d = ds__f16_to_f32(y[i].d) * (float)y[i].scales[j];
            if (d == 0.0f) continue;
            for (l = 0; l < 16; l++) L[16 * j + l] = (int8_t)(DS__MAX(-32, DS__MIN(31, ds__round_even(x[16 * j + l] / d))) + 32);
        }
        for (j = 0; j < DS__QK_K; j += 128) { /* halves of 128: ql nibbles, qh 2-bit pairs */
            uint8_t *ql = y[i].ql + j / 2, *qh = y[i].qh + j / 4;
            for (l = 0; l < 32; l++) {
                ql[l] = (uint8_t)((L[j + l] & 0xf) | (L[j + l + 64] & 0xf) << 4);
                ql[l + 32] = (uint8_t)((L[j + l + 32] & 0xf) | (L[j + l + 96] & 0xf) << 4);
                qh[l] = (uint8_t)((L[j + l] >> 4) | (L[j + l + 32] >> 4) << 2 | (L[j + l + 64] >> 4) << 4 | (L[j + l + 96] >> 4) << 6);
            }
        }
    }
}

/* ---- dequantizers ------------------------------------------------------------------------ */
/* the 6-bit scale and min of sub-block j (0..7), packed in 12 bytes */
static void ds__q4_k_scale_min(const uint8_t *s, int j, int *sc, int *mn) {
    if (j < 4) {
        *sc = s[j] & 63;
        *mn = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0xf) | ((s[j - 4] >> 6) << 4);
        *mn = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

/* the 256 levels of a Q4_K super-block (qh NULL) or a Q5_K one, in element order: 32 bytes of
   nibbles hold 64 values (low nibbles first); Q5_K's bit 4 comes from qh */
static void ds__k4_levels(const uint8_t *qs, const uint8_t *qh, uint8_t *L) {
    int j, l;
    for (j = 0; j < 4; j++) {
        for (l = 0; l < 32; l++) {
            L[64 * j + l] = (uint8_t)((qs[32 * j + l] & 0xf) | (qh ? ((qh[l] >> (2 * j)) & 1) << 4 : 0));
            L[64 * j + 32 + l] = (uint8_t)((qs[32 * j + l] >> 4) | (qh ? ((qh[l] >> (2 * j + 1)) & 1) << 4 : 0));
        }
    }
}

/* x = d * scale_j * L - dmin * min_j per 32-value sub-block j */
static void ds__dequantize_k4(uint16_t d16, uint16_t dmin16, const uint8_t *scales, const uint8_t *L, float *y) {
    float d = ds__f16_to_f32(d16), dmin = ds__f16_to_f32(dmin16);
    int j, l;
    for (j = 0; j < 8; j++) {
        int sc, mn;
        float dj, mj;
        ds__q4_k_scale_min(scales, j, &sc, &mn);
        dj = d * (float)sc;
        mj = dmin * (float)mn;
        for (l = 0; l < 32; l++) y[32 * j + l] = dj * (float)L[32 * j + l] - mj;
    }
}

/* the 6-bit value (minus 32) of element l + 32 * k of a 128-element half (k = 0..3) */
static int ds__q6_k_value(const uint8_t *ql, const uint8_t *qh, int l, int k) {
    int lo = (k & 1) ? ql[l + 32] : ql[l];
    lo = (k & 2) ? lo >> 4 : lo & 0xf;
    return (lo | (((qh[l] >> (2 * k)) & 3) << 4)) - 32;
}

static void ds__dequantize_q6_k(const ds__block_q6_k *b, float *y, int64_t nb) {
    int64_t i;
    int h, l, k;
    for (i = 0; i < nb; i++, b++) {
        float d = ds__f16_to_f32(b->d);
        for (h = 0; h < 2; h++) {
            const uint8_t *ql = b->ql + 64 * h, *qh = b->qh + 32 * h;
            const int8_t *sc = b->scales + 8 * h;
            for (k = 0; k < 4; k++)
                for (l = 0; l < 32; l++) y[128 * h + 32 * k + l] = d * (float)sc[l / 16 + 2 * k] * (float)ds__q6_k_value(ql, qh, l, k);
        }
        y += DS__QK_K;
    }
}

/* ---- Q4_K / Q5_K quantizers (ggml's quantize_row_q4_K_ref / q5_K_ref) --------------------- */
/* ggml's make_qkx2_quants: levels L in [0, nmax] with x ~ scale * L - *the_min (the min is
   kept <= 0 in x, so *the_min >= 0), minimising the w-weighted squared error. Starts from the
   range's grid, then tries nstep + 1 stretched grids (nmax + rmin + rdelta * is levels over the
   range), each refit by weighted least squares; the first strictly better one wins. Laux:
   scratch of n. The importance-weighted Q4_1 / Q5_1 searches (ggml's make_qkx3_quants without
   its MAD option) are the same search with their own weights and grid. */
static float ds__make_qkx2_quants(int n, int nmax, const float *x, const float *w, uint8_t *L, float *the_min, uint8_t *Laux,
                                  float rmin, float rdelta, int nstep) {
    float min = x[0], max = x[0], sum_w = w[0], sum_x = w[0] * x[0], iscale, scale, best_error = 0.0f;
    int i, is;
    for (i = 1; i < n; i++) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (min > 0.0f) min = 0.0f;
    if (max == min) {
        memset(L, 0, (size_t)n);
        *the_min = -min;
        return 0.0f;
    }
    iscale = (float)nmax / (max - min);
    scale = 1.0f / iscale;
    for (i = 0; i < n; i++) {
        float diff;
        L[i] = (uint8_t)DS__MAX(0, DS__MIN(nmax, ds__round_even(iscale * (x[i] - min))));
        diff = scale * (float)L[i] + min - x[i];
        best_error += w[i] * (diff * diff);
    }
    for (is = 0; is <= nstep; is++) {
        float sum_l = 0.0f, sum_l2 = 0.0f, sum_xl = 0.0f, D;
        iscale = (rmin + rdelta * (float)is + (float)nmax) / (max - min);
        for (i = 0; i < n; i++) {
            int l = DS__MAX(0, DS__MIN(nmax, ds__round_even(iscale * (x[i] - min))));
            Laux[i] = (uint8_t)l;
            sum_l += w[i] * (float)l;
            sum_l2 += w[i] * (float)l * (float)l;
            sum_xl += w[i] * (float)l * x[i];
        }
        D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0.0f) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D, this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D, err = 0.0f;
            if (this_min > 0.0f) {
                this_min = 0.0f;
                this_scale = sum_xl / sum_l2;
            }
            for (i = 0; i < n; i++) {
                float diff = this_scale * (float)Laux[i] + this_min - x[i];
                err += w[i] * (diff * diff);
            }
            if (err < best_error) {
                memcpy(L, Laux, (size_t)n);
                best_error = err;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

/* Q4_K (nmax 15) and Q5_K (nmax 31) share everything but the level search's parameters and the
   packing: per 32-value sub-block a scale and min (ds__make_qkx2_quants, weights av + |x| with
   av the sub-block's RMS, or with an importance row qw: qw * sqrt(sigma2 + x^2) as ggml weighs
   imatrix rows), both sets as 6 bits of the super-block's f16 d and dmin, then every value
   re-rounded against the stored scale and min. L gets the 256 levels. */
static void ds__quantize_k4_block(const float *x, const float *qw, int nmax, uint16_t *d, uint16_t *dmin, uint8_t *scales_out, uint8_t *L) {
    float w[32], scales[8], mins[8], max_scale = 0.0f, max_min = 0.0f, inv_scale, inv_min, sigma2 = 0.0f;
    uint8_t Laux[32];
    int j, l;
    if (qw) {
        for (l = 0; l < DS__QK_K; l++) sigma2 += x[l] * x[l];
        sigma2 = 2.0f * sigma2 / DS__QK_K;
    }
    for (j = 0; j < 8; j++) {
        const float *xj = x + 32 * j;
        float sum_x2 = 0.0f, av;
        for (l = 0; l < 32; l++) sum_x2 += xj[l] * xj[l];
        av = sqrtf(sum_x2 / 32.0f);
        for (l = 0; l < 32; l++) w[l] = qw ? qw[32 * j + l] * sqrtf(sigma2 + xj[l] * xj[l]) : av + fabsf(xj[l]);
        scales[j] = nmax == 15 ? ds__make_qkx2_quants(32, 15, xj, w, L + 32 * j, &mins[j], Laux, -1.0f, 0.1f, 20)
                               : ds__make_qkx2_quants(32, 31, xj, w, L + 32 * j, &mins[j], Laux, -0.5f, 0.1f, 15);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    inv_scale = max_scale > 0.0f ? 63.0f / max_scale : 0.0f;
    inv_min = max_min > 0.0f ? 63.0f / max_min : 0.0f;
    memset(scales_out, 0, 12);
    for (j = 0; j < 8; j++) {
        /* ggml stores the rounded value in a byte before clamping: a negative one wraps high */
        int ls = DS__MIN(63, (uint8_t)ds__round_even(inv_scale * scales[j]));
        int lm = DS__MIN(63, (uint8_t)ds__round_even(inv_min * mins[j]));
        if (j < 4) {
            scales_out[j] = (uint8_t)ls;
            scales_out[j + 4] = (uint8_t)lm;
        } else {
            scales_out[j + 4] = (uint8_t)((ls & 0xf) | ((lm & 0xf) << 4));
            scales_out[j - 4] |= (uint8_t)((ls >> 4) << 6);
            scales_out[j] |= (uint8_t)((lm >> 4) << 6);
        }
    }
    *d = ds__f32_to_f16(max_scale / 63.0f);
    *dmin = ds__f32_to_f16(max_min / 63.0f);
    for (j = 0; j < 8; j++) {
        int sc, mn;
        float dj, mj;
        ds__q4_k_scale_min(scales_out, j, &sc, &mn);
        dj = ds__f16_to_f32(*d) * (float)sc;
        if (dj == 0.0f) continue;
        mj = ds__f16_to_f32(*dmin) * (float)mn;
        for (l = 0; l < 32; l++) L[32 * j + l] = (uint8_t)DS__MAX(0, DS__MIN(nmax, ds__round_even((x[32 * j + l] + mj) / dj)));
    }
}

/* qw: optional importance weights, one per value (NULL: ggml's unweighted reference) */
static void ds__quantize_q4_k(const float *x, ds__block_q4_k *y, int64_t nb, const float *qw) {
    uint8_t L[DS__QK_K];
    int64_t i;
    int j, l;
    for (i = 0; i < nb; i++, x += DS__QK_K) {
        ds__quantize_k4_block(x, qw ? qw + i * DS__QK_K : NULL, 15, &y[i].d, &y[i].dmin, y[i].scales, L);
        for (j = 0; j < 4; j++) /* 64 values per 32 bytes: low nibbles, then high nibbles */
            for (l = 0; l < 32; l++) y[i].qs[32 * j + l] = (uint8_t)(L[64 * j + l] | (L[64 * j + 32 + l] << 4));
    }
}

static void ds__quantize_q5_k(const float *x, ds__block_q5_k *y, int64_t nb, const float *qw) {
    uint8_t L[DS__QK_K];
    int64_t i;
    int j, l;
    for (i = 0; i < nb; i++, x += DS__QK_K) {
        ds__quantize_k4_block(x, qw ? qw + i * DS__QK_K : NULL, 31, &y[i].d, &y[i].dmin, y[i].scales, L);
        memset(y[i].qh, 0, sizeof y[i].qh);
        for (j = 0; j < 4; j++) {
            for (l = 0; l < 32; l++) {
                int a = L[64 * j + l], b = L[64 * j + 32 + l];
                y[i].qs[32 * j + l] = (uint8_t)((a & 0xf) | ((b & 0xf) << 4));
                y[i].qh[l] |= (uint8_t)(((a >> 4) << (2 * j)) | ((b >> 4) << (2 * j + 1)));
            }
        }
    }
}

/* ---- IQ4_NL quantizer (ggml's quantize_iq4_nl, blocks of 32) ------------------------------ */
/* the grid index nearest to v (the lower one on a tie) */
static int ds__iq4nl_index(float v) {
    int lo = 0, hi = 15;
    if (v <= ds__iq4nl_values[0]) return 0;
    if (v >= ds__iq4nl_values[15]) return 15;
    while (hi - lo > 1) {
        int mid = (lo + hi) / 2;
        if (v < ds__iq4nl_values[mid]) hi = mid;
        else lo = mid;
    }
    return v - ds__iq4nl_values[hi - 1] < ds__iq4nl_values[hi] - v ? hi - 1 : hi;
}

/* the scale: -max / -127 first (the extreme on the grid's end), refit by weighted least squares,
   then 15 stretched starts (-7..7 grid steps), keeping the best sum(w q x)^2 / sum(w q^2); weights
   x^2, or qw * sqrt(sigma2 + x^2) with an importance row. Values re-rounded with the f16 scale. */
static void ds__quantize_iq4_nl(const float *x, ds__block_iq4_nl *y, int64_t nb, const float *qw) {
    int64_t i;
    int j;
    for (i = 0; i < nb; i++, x += DS__QK) {
        float w[DS__QK], sigma2 = 0.0f, amax = 0.0f, max = 0.0f, d, id, sumqx = 0.0f, sumq2 = 0.0f, best;
        int L[DS__QK], itry;
        for (j = 0; j < DS__QK; j++) sigma2 += x[j] * x[j];
        sigma2 *= 2.0f / DS__QK;
        for (j = 0; j < DS__QK; j++) w[j] = qw ? qw[i * DS__QK + j] * sqrtf(sigma2 + x[j] * x[j]) : x[j] * x[j];
        for (j = 0; j < DS__QK; j++) {
            if (fabsf(x[j]) > amax) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        }
        d = 0.0f;
        if (amax < 1e-15f) goto store; /* scale 0; the values still get the grid's nearest to 0 */
        d = -max / ds__iq4nl_values[0];
        id = 1.0f / d;
        for (j = 0; j < DS__QK; j++) {
            float q = ds__iq4nl_values[ds__iq4nl_index(id * x[j])];
            sumqx += w[j] * q * x[j];
            sumq2 += w[j] * q * q;
        }
        d = sumqx / sumq2;
        best = d * sumqx;
        for (itry = -7; itry <= 7; itry++) {
            id = ((float)itry + ds__iq4nl_values[0]) / max;
            sumqx = sumq2 = 0.0f;
            for (j = 0; j < DS__QK; j++) {
                float q = ds__iq4nl_values[ds__iq4nl_index(id * x[j])];
                sumqx += w[j] * q * x[j];
                sumq2 += w[j] * q * q;
            }
            if (sumq2 > 0.0f && sumqx * sumqx > best * sumq2) {
                d = sumqx / sumq2;
                best = d * sumqx;
            }
        }
    store:
        y[i].d = ds__f32_to_f16(d);
        id = d != 0.0f ? 1.0f / d : 0.0f;
        for (j = 0; j < DS__QK; j++) L[j] = ds__iq4nl_index(id * x[j]);
        for (j = 0; j < 16; j++) y[i].qs[j] = (uint8_t)(L[j] | (L[j + 16] << 4));
    }
}

/* Bytes of one row of n elements (n a whole number of blocks: callers checked). */
static size_t ds__row_bytes(ds_type t, int64_t n) {
    ds__type_traits tr = ds__type_info(t);
    return tr.block_elems ? (size_t)(n / tr.block_elems) * tr.block_bytes : 0;
}

/* dst (n) = src (n elements of type t); n is a whole number of t's blocks */
static void ds__dequantize_row(ds_type t, const void *src, float *dst, int64_t n) {
    int64_t i, nb = n / (int64_t)DS__MAX(1, ds__type_info(t).block_elems);
    int j;
    switch (t) {
    case DS_TYPE_F32: memmove(dst, src, (size_t)n * sizeof(float)); break;
    case DS_TYPE_F16: {
        const uint16_t *s = DS__CAST(const uint16_t *, src);
        for (i = 0; i < n; i++) dst[i] = ds__f16_to_f32(s[i]);
        break;
    }
    case DS_TYPE_BF16: {
        const uint16_t *s = DS__CAST(const uint16_t *, src);
        for (i = 0; i < n; i++) dst[i] = ds__bf16_to_f32(s[i]);
        break;
    }
    case DS_TYPE_Q4_0: {
        const ds__block_q4_0 *b = DS__CAST(const ds__block_q4_0 *, src);
        for (i = 0; i < nb; i++, dst += DS__QK) {
            float d = ds__f16_to_f32(b[i].d);
            for (j = 0; j < 16; j++) {
                dst[j] = d * (float)((b[i].qs[j] & 0xf) - 8);
                dst[j + 16] = d * (float)((b[i].qs[j] >> 4) - 8);
            }
        }
        break;
    }
    case DS_TYPE_Q4_1: {
        const ds__block_q4_1 *b = DS__CAST(const ds__block_q4_1 *, src);
        for (i = 0; i < nb; i++, dst += DS__QK) {
            float d = ds__f16_to_f32(b[i].d), m = ds__f16_to_f32(b[i].m);
            for (j = 0; j < 16; j++) {
                dst[j] = d * (float)(b[i].qs[j] & 0xf) + m;
                dst[j + 16] = d * (float)(b[i].qs[j] >> 4) + m;
            }
        }
        break;
    }
    case DS_TYPE_Q5_0: {
        const ds__block_q5_0 *b = DS__CAST(const ds__block_q5_0 *, src);
        int q[DS__QK];
        for (i = 0; i < nb; i++, dst += DS__QK) {
            float d = ds__f16_to_f32(b[i].d);
            ds__q5_unpack(b[i].qh, b[i].qs, q);
            for (j = 0; j < DS__QK; j++) dst[j] = d * (float)(q[j] - 16);
        }
        break;
    }
    case DS_TYPE_Q5_1: {
        const ds__block_q5_1 *b = DS__CAST(const ds__block_q5_1 *, src);
        int q[DS__QK];
        for (i = 0; i < nb; i++, dst += DS__QK) {
            float d = ds__f16_to_f32(b[i].d), m = ds__f16_to_f32(b[i].m);
            ds__q5_unpack(b[i].qh, b[i].qs, q);
            for (j = 0; j < DS__QK; j++) dst[j] = d * (float)q[j] + m;
        }
        break;
    }
    case DS_TYPE_Q8_0: {
        const ds__block_q8_0 *b = DS__CAST(const ds__block_q8_0 *, src);
        for (i = 0; i < nb; i++, dst += DS__QK) {
            float d = ds__f16_to_f32(b[i].d);
            for (j = 0; j < DS__QK; j++) dst[j] = d * (float)b[i].qs[j];
        }
        break;
    }
    case DS_TYPE_Q8_1: {
        const ds__block_q8_1 *b = DS__CAST(const ds__block_q8_1 *, src);
        for (i = 0; i < nb; i++, dst += DS__QK) {
            float d = ds__f16_to_f32(b[i].d);
            for (j = 0; j < DS__QK; j++) dst[j] = d * (float)b[i].qs[j];
        }
        break;
    }
    case DS_TYPE_Q4_K: {
        const ds__block_q4_k *b = DS__CAST(const ds__block_q4_k *, src);
        uint8_t L[DS__QK_K];
        for (i = 0; i < nb; i++, dst += DS__QK_K) {
            ds__k4_levels(b[i].qs, NULL, L);
            ds__dequantize_k4(b[i].d, b[i].dmin, b[i].scales, L, dst);
        }
        break;
    }
    case DS_TYPE_Q5_K: {
        const ds__block_q5_k *b = DS__CAST(const ds__block_q5_k *, src);
        uint8_t L[DS__QK_K];
        for (i = 0; i < nb; i++, dst += DS__QK_K) {
            ds__k4_levels(b[i].qs, b[i].qh, L);
            ds__dequantize_k4(b[i].d, b[i].dmin, b[i].scales, L, dst);
        }
        break;
    }
    case DS_TYPE_Q6_K: ds__dequantize_q6_k(DS__CAST(const ds__block_q6_k *, src), dst, nb); break;
    case DS_TYPE_Q8_K: {
        const ds__block_q8_k *b = DS__CAST(const ds__block_q8_k *, src);
        for (i = 0; i < nb; i++, dst += DS__QK_K)
            for (j = 0; j < DS__QK_K; j++) dst[j] = b[i].d * (float)b[i].qs[j];
        break;
    }
    case DS_TYPE_IQ4_NL: {
        const ds__block_iq4_nl *b = DS__CAST(const ds__block_iq4_nl *, src);
        for (i = 0; i < nb; i++, dst += DS__QK) {
            float d = ds__f16_to_f32(b[i].d);
            for (j = 0; j < 16; j++) {
                dst[j] = d * (float)ds__iq4nl_values[b[i].qs[j] & 0xf];
                dst[j + 16] = d * (float)ds__iq4nl_values[b[i].qs[j] >> 4];
            }
        }
        break;
    }
    case DS_TYPE_COUNT_: break;
    }
}

/* dst = src (n floats) stored as type t */
static void ds__quantize_row(ds_type t, const float *src, void *dst, int64_t n) {
    int64_t i, nb = n / (int64_t)DS__MAX(1, ds__type_info(t).block_elems);
    switch (t) {
    case DS_TYPE_F32: memmove(dst, src, (size_t)n * sizeof(float)); break;
    case DS_TYPE_F16:
        for (i = 0; i < n; i++) DS__CAST(uint16_t *, dst)[i] = ds__f32_to_f16(src[i]);
        break;
    case DS_TYPE_BF16:
        for (i = 0; i < n; i++) DS__CAST(uint16_t *, dst)[i] = ds__f32_to_bf16(src[i]);
        break;
    case DS_TYPE_Q4_0: ds__quantize_q4_0(src, DS__CAST(ds__block_q4_0 *, dst), nb); break;
    case DS_TYPE_Q4_1: ds__quantize_q4_1(src, DS__CAST(ds__block_q4_1 *, dst), nb); break;
    case DS_TYPE_Q5_0: ds__quantize_q5_0(src, DS__CAST(ds__block_q5_0 *, dst), nb); break;
    case DS_TYPE_Q5_1: ds__quantize_q5_1(src, DS__CAST(ds__block_q5_1 *, dst), nb); break;
    case DS_TYPE_Q8_0: ds__quantize_q8_0(src, DS__CAST(ds__block_q8_0 *, dst), nb); break;
    case DS_TYPE_Q8_1: ds__quantize_q8_1(src, DS__CAST(ds__block_q8_1 *, dst), nb); break;
    case DS_TYPE_Q8_K: ds__quantize_q8_k(src, DS__CAST(ds__block_q8_k *, dst), nb); break;
    case DS_TYPE_Q6_K: ds__quantize_q6_k(src, DS__CAST(ds__block_q6_k *, dst), nb, NULL); break;
    case DS_TYPE_Q4_K: ds__quantize_q4_k(src, DS__CAST(ds__block_q4_k *, dst), nb, NULL); break;
    case DS_TYPE_Q5_K: ds__quantize_q5_k(src, DS__CAST(ds__block_q5_k *, dst), nb, NULL); break;
    case DS_TYPE_IQ4_NL: ds__quantize_iq4_nl(src, DS__CAST(ds__block_iq4_nl *, dst), nb, NULL); break;
    case DS_TYPE_COUNT_: break;
    }
}

/* ---- importance-weighted quantizers (ggml's quantize_* with quant_weights) -----------------
   Each value's squared error counts with weight qw[j] * sqrt(sigma2 + x[j]^2), sigma2 the
   row's mean square (Q6_K: qw[j] alone), qw the importance matrix's mean squared activation
   of the value's column. Instead of the reference's fixed rounding, a search over scales (and
   minimums) minimises that weighted error per block. */

/* dst = src (n floats) as type t, each value weighted by qw (n floats, NULL: ds__quantize_row).
   Types without a weighted search (Q8_0, the float types) ignore qw, as ggml does. */
static void ds__quantize_row_w(ds_type t, const float *src, void *dst, int64_t n, const float *qw) {
    int64_t i, nb = n / DS__QK;
    float sigma2 = 0.0f, w[DS__QK], the_min;
    int8_t L[DS__QK];
    uint8_t U[DS__QK], Uaux[DS__QK];
    int j, q[DS__QK];
    if (!qw || (t != DS_TYPE_Q4_0 && t != DS_TYPE_Q4_1 && t != DS_TYPE_Q5_0 && t != DS_TYPE_Q5_1 && t != DS_TYPE_Q6_K &&
                t != DS_TYPE_Q4_K && t != DS_TYPE_Q5_K && t != DS_TYPE_IQ4_NL)) {
        ds__quantize_row(t, src, dst, n);
        return;
    }
    switch (t) { /* the K and non-linear quantizers take the importance row themselves */
    case DS_TYPE_Q6_K: ds__quantize_q6_k(src, DS__CAST(ds__block_q6_k *, dst), n / DS__QK_K, qw); return;
    case DS_TYPE_Q4_K: ds__quantize_q4_k(src, DS__CAST(ds__block_q4_k *, dst), n / DS__QK_K, qw); return;
    case DS_TYPE_Q5_K: ds__quantize_q5_k(src, DS__CAST(ds__block_q5_k *, dst), n / DS__QK_K, qw); return;
    case DS_TYPE_IQ4_NL: ds__quantize_iq4_nl(src, DS__CAST(ds__block_iq4_nl *, dst), n / DS__QK, qw); return;
    default: break;
    }
    for (i = 0; i < n; i++) sigma2 += src[i] * src[i];
    sigma2 /= (float)n;
    for (i = 0; i < nb; i++, src += DS__QK, qw += DS__QK) {
        float d;
        for (j = 0; j < DS__QK; j++) w[j] = qw[j] * sqrtf(sigma2 + src[j] * src[j]);
        switch (t) {
        case DS_TYPE_Q4_0: {
            ds__block_q4_0 *y = DS__CAST(ds__block_q4_0 *, dst) + i;
            d = ds__make_qx_quants(DS__QK, 8, src, L, w);
            y->d = ds__f32_to_f16(d);
            for (j = 0; j < DS__QK / 2; j++) y->qs[j] = (uint8_t)(L[j] | L[j + DS__QK / 2] << 4);
            break;
        }
        case DS_TYPE_Q5_0: {
            ds__block_q5_0 *y = DS__CAST(ds__block_q5_0 *, dst) + i;
            d = ds__make_qx_quants(DS__QK, 16, src, L, w);
            y->d = ds__f32_to_f16(d);
            for (j = 0; j < DS__QK; j++) q[j] = L[j];
            ds__q5_pack(q, y->qh, y->qs);
            break;
        }
        case DS_TYPE_Q4_1: {
            ds__block_q4_1 *y = DS__CAST(ds__block_q4_1 *, dst) + i;
            d = ds__make_qkx2_quants(DS__QK, 15, src, w, U, &the_min, Uaux, -0.9f, 0.05f, 36);
            y->d = ds__f32_to_f16(d);
            y->m = ds__f32_to_f16(-the_min);
            for (j = 0; j < DS__QK / 2; j++) y->qs[j] = (uint8_t)(U[j] | U[j + DS__QK / 2] << 4);
            break;
        }
        default: { /* Q5_1 */
            ds__block_q5_1 *y = DS__CAST(ds__block_q5_1 *, dst) + i;
            d = ds__make_qkx2_quants(DS__QK, 31, src, w, U, &the_min, Uaux, -0.9f, 0.05f, 36);
            y->d = ds__f32_to_f16(d);
            y->m = ds__f32_to_f16(-the_min);
            for (j = 0; j < DS__QK; j++) q[j] = U[j];
            ds__q5_pack(q, y->qh, y->qs);
            break;
        }
        }
    }
}

// >>kernels
/* Kernels: one scalar reference per operation (name_ref) and its SIMD versions (name_avx2,
   name_avx512, name_neon, ...), reached only through the ds__ops table (>>backend). Matmuls:
   y (T, N) = x (T, K) @ w^T for w in any ds_type, as tiles of a task grid (ds__gemm_fn).
   Semantics are those of the scalar references below, which follow llama.cpp: x is quantized
   on the fly to Q8_0 (for Q4_0 / Q8_0 weights), Q8_1 (Q4_1) or Q8_K (Q4_K, Q6_K), or to BF16
   for BF16 weights; each block's integer dot is exact and scaled in f32. For Q4_0 / Q4_1 / Q8_0
   the references fix llama.cpp's float order too (ds__dot_block_lanes) and the x86 kernels
   follow it bit for bit; the other SIMD kernels give the same integers and scales and differ
   from their references only in the order of float additions. The CPU backend picks, once per
   session or trainer: AVX2+FMA+F16C (maddubs), AVX-VNNI (vpdpbusd on 256 bits), AVX512-VNNI (two blocks per 512-bit vpdpbusd), AVX512-BF16
   (vdpbf16ps), NEON (SDOT where compiled for it); tiles of 4 weight rows x up to 4 tokens keep
   unpacked weight blocks in registers across tokens for prefill, and decode prefetches the
   weight stream. Threads share the work as tiles of tokens x rows through ds_pool_run. */

/* ---- scalar reference dot products -------------------------------------------------------- */
/* Each returns sum_k w[k] * x[k] over one row of K elements: w in the weight type, x in the
   activation type the weight type pairs with (ds__act_type). Integer sums are exact; the float
   rounding is per block, as llama.cpp does it, so logits agree closely. */
/* llama.cpp's float order for the 32-element integer-dot blocks, which every kernel here
   reproduces: lane l (0..7) of a block is the exact integer sum of its elements 4l..4l+3; per
   block, lane accumulator l += (d_w * d_x) * lane by one fused multiply-add; at the end the
   lanes are summed as a vector unit halves them, ((a0+a4)+(a2+a6))+((a1+a5)+(a3+a7)), then
   Q4_1's m_w * s_x terms (fused into one running sum in block order) are added. */
static float ds__hsum8_tree(const float *a) { return ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7])); }

/* qw: the block's 32 integer weights; lanes of the dot with qx accumulated as above */
static void ds__dot_block_lanes(float *acc, const int *qw, const int8_t *qx, float dd) {
    int l, e;
    for (l = 0; l < 8; l++) {
        int s = 0;
        for (e = 4 * l; e < 4 * l + 4; e++) s += qw[e] * qx[e];
        acc[l] = fmaf(dd, (float)s, acc[l]);
    }
}

static float ds__dot_q4_0_q8_0_ref(int K, const void *wv, const void *xv) {
    const ds__block_q4_0 *w = DS__CAST(const ds__block_q4_0 *, wv);
    const ds__block_q8_0 *x = DS__CAST(const ds__block_q8_0 *, xv);
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int i, j, q[DS__QK];
    for (i = 0; i < K / DS__QK; i++) {
        for (j = 0; j < 16; j++) {
            q[j] = (w[i].qs[j] & 0xf) - 8;
            q[j + 16] = (w[i].qs[j] >> 4) - 8;
        }
        ds__dot_block_lanes(acc, q, x[i].qs, ds__f16_to_f32(w[i].d) * ds__f16_to_f32(x[i].d));
    }
    return ds__hsum8_tree(acc);
}

static float ds__dot_q4_1_q8_1_ref(int K, const void *wv, const void *xv) {
    const ds__block_q4_1 *w = DS__CAST(const ds__block_q4_1 *, wv);
    const ds__block_q8_1 *x = DS__CAST(const ds__block_q8_1 *, xv);
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0}, ms = 0.0f;
    int i, j, q[DS__QK];
    for (i = 0; i < K / DS__QK; i++) {
        for (j = 0; j < 16; j++) {
            q[j] = w[i].qs[j] & 0xf;
            q[j + 16] = w[i].qs[j] >> 4;
        }
        /* sum_j (d q_j + m) dx qx_j = d dx sum q qx + m (dx sum qx) */
        ds__dot_block_lanes(acc, q, x[i].qs, ds__f16_to_f32(w[i].d) * ds__f16_to_f32(x[i].d));
        ms = fmaf(ds__f16_to_f32(w[i].m), ds__f16_to_f32(x[i].s), ms);
    }
    return ds__hsum8_tree(acc) + ms;
}

static float ds__dot_q5_0_q8_0_ref(int K, const void *wv, const void *xv) {
    const ds__block_q5_0 *w = DS__CAST(const ds__block_q5_0 *, wv);
    const ds__block_q8_0 *x = DS__CAST(const ds__block_q8_0 *, xv);
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int i, j, q[DS__QK];
    for (i = 0; i < K / DS__QK; i++) {
        ds__q5_unpack(w[i].qh, w[i].qs, q);
        for (j = 0; j < DS__QK; j++) q[j] -= 16;
        ds__dot_block_lanes(acc, q, x[i].qs, ds__f16_to_f32(w[i].d) * ds__f16_to_f32(x[i].d));
    }
    return ds__hsum8_tree(acc);
}

static float ds__dot_iq4_nl_q8_0_ref(int K, const void *wv, const void *xv) {
    const ds__block_iq4_nl *w = DS__CAST(const ds__block_iq4_nl *, wv);
    const ds__block_q8_0 *x = DS__CAST(const ds__block_q8_0 *, xv);
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int i, j, q[DS__QK];
    for (i = 0; i < K / DS__QK; i++) {
        for (j = 0; j < 16; j++) {
            q[j] = ds__iq4nl_values[w[i].qs[j] & 0xf];
            q[j + 16] = ds__iq4nl_values[w[i].qs[j] >> 4];
        }
        ds__dot_block_lanes(acc, q, x[i].qs, ds__f16_to_f32(w[i].d) * ds__f16_to_f32(x[i].d));
    }
    return ds__hsum8_tree(acc);
}

static float ds__dot_q5_1_q8_1_ref(int K, const void *wv, const void *xv) {
    const ds__block_q5_1 *w = DS__CAST(const ds__block_q5_1 *, wv);
    const ds__block_q8_1 *x = DS__CAST(const ds__block_q8_1 *, xv);
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0}, ms = 0.0f;
    int i, q[DS__QK];
    for (i = 0; i < K / DS__QK; i++) {
        ds__q5_unpack(w[i].qh, w[i].qs, q);
        ds__dot_block_lanes(acc, q, x[i].qs, ds__f16_to_f32(w[i].d) * ds__f16_to_f32(x[i].d));
        ms = fmaf(ds__f16_to_f32(w[i].m), ds__f16_to_f32(x[i].s), ms);
    }
    return ds__hsum8_tree(acc) + ms;
}

static float ds__dot_q8_0_q8_0_ref(int K, const void *wv, const void *xv) {
    const ds__block_q8_0 *w = DS__CAST(const ds__block_q8_0 *, wv);
    const ds__block_q8_0 *x = DS__CAST(const ds__block_q8_0 *, xv);
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int i, j, q[DS__QK];
    for (i = 0; i < K / DS__QK; i++) {
        for (j = 0; j < DS__QK; j++) q[j] = w[i].qs[j];
        ds__dot_block_lanes(acc, q, x[i].qs, ds__f16_to_f32(w[i].d) * ds__f16_to_f32(x[i].d));
    }
    return ds__hsum8_tree(acc);
}

/* one Q4_K / Q5_K super-block (its levels L) against a Q8_K block: integer sums of
   scale * (L . x) and min * (x's block sums), then the two float scales */
static float ds__dot_k4_block_ref(uint16_t d, uint16_t dmin, const uint8_t *scales, const uint8_t *L, const ds__block_q8_k *x) {
    int sq = 0, sm = 0, j, l;
    for (j = 0; j < 8; j++) {
        int sc, mn, s = 0;
        ds__q4_k_scale_min(scales, j, &sc, &mn);
        for (l = 0; l < 32; l++) s += L[32 * j + l] * x->qs[32 * j + l];
        sq += sc * s;
        sm += mn * (x->bsums[2 * j] + x->bsums[2 * j + 1]);
    }
    return x->d * (ds__f16_to_f32(d) * (float)sq - ds__f16_to_f32(dmin) * (float)sm);
}
static float ds__dot_q4_k_q8_k_ref(int K, const void *wv, const void *xv) {
    const ds__block_q4_k *w = DS__CAST(const ds__block_q4_k *, wv);
    const ds__block_q8_k *x = DS__CAST(const ds__block_q8_k *, xv);
    uint8_t L[DS__QK_K];
    float sum = 0.0f;
    int i;
    for (i = 0; i < K / DS__QK_K; i++) {
        ds__k4_levels(w[i].qs, NULL, L);
        sum += ds__dot_k4_block_ref(w[i].d, w[i].dmin, w[i].scales, L, x + i);
    }
    return sum;
}
static float ds__dot_q5_k_q8_k_ref(int K, const void *wv, const void *xv) {
    const ds__block_q5_k *w = DS__CAST(const ds__block_q5_k *, wv);
    const ds__block_q8_k *x = DS__CAST(const ds__block_q8_k *, xv);
    uint8_t L[DS__QK_K];
    float sum = 0.0f;
    int i;
    for (i = 0; i < K / DS__QK_K; i++) {
        ds__k4_levels(w[i].qs, w[i].qh, L);
        sum += ds__dot_k4_block_ref(w[i].d, w[i].dmin, w[i].scales, L, x + i);
    }
    return sum;
}

static float ds__dot_q6_k_q8_k_ref(int K, const void *wv, const void *xv) {
    const ds__block_q6_k *w = DS__CAST(const ds__block_q6_k *, wv);
    const ds__block_q8_k *x = DS__CAST(const ds__block_q8_k *, xv);
    float sum = 0.0f;
    int i, h, k, l;
    for (i = 0; i < K / DS__QK_K; i++) {
        int sq = 0;
        for (h = 0; h < 2; h++) {
            const uint8_t *ql = w[i].ql + 64 * h, *qh = w[i].qh + 32 * h;
            for (k = 0; k < 4; k++) {
                for (l = 0; l < 32; l += 16) { /* one scale per 16 values */
                    int s = 0, e;
                    for (e = l; e < l + 16; e++) s += ds__q6_k_value(ql, qh, e, k) * x[i].qs[128 * h + 32 * k + e];
                    sq += w[i].scales[8 * h + 2 * k + l / 16] * s;
                }
            }
        }
        sum += ds__f16_to_f32(w[i].d) * x[i].d * (float)sq;
    }
    return sum;
}

/* a . b summed in order (the F32 matmul's dot and the element-wise reference) */
static float ds__dot_f32_ref(const float *a, const float *b, int n) {
    float sum = 0.0f;
    int k;
    for (k = 0; k < n; k++) sum += a[k] * b[k];
    return sum;
}
static float ds__dot_f32_f32_ref(int K, const void *wv, const void *xv) {
    return ds__dot_f32_ref(DS__CAST(const float *, wv), DS__CAST(const float *, xv), K);
}

static float ds__dot_f16_f32_ref(int K, const void *wv, const void *xv) {
    const uint16_t *w = DS__CAST(const uint16_t *, wv);
    const float *x = DS__CAST(const float *, xv);
    float sum = 0.0f;
    int k;
    for (k = 0; k < K; k++) sum += ds__f16_to_f32(w[k]) * x[k];
    return sum;
}

/* bf16 x bf16 products are exact in f32, so only the summation order separates the paths */
static float ds__dot_bf16_bf16_ref(int K, const void *wv, const void *xv) {
    const uint16_t *w = DS__CAST(const uint16_t *, wv), *x = DS__CAST(const uint16_t *, xv);
    float sum = 0.0f;
    int k;
    for (k = 0; k < K; k++) sum += ds__bf16_to_f32(w[k]) * ds__bf16_to_f32(x[k]);
    return sum;
}

/* ---- matmul ------------------------------------------------------------------------------- */
/* The activation type x is converted to before the dot products with weights of type wt
   (F32: x is used as it is). */
static ds_type ds__act_type(ds_type wt) {
    switch (wt) {
    case DS_TYPE_Q4_0: case DS_TYPE_Q5_0: case DS_TYPE_Q8_0: case DS_TYPE_IQ4_NL: return DS_TYPE_Q8_0;
    case DS_TYPE_Q4_1: case DS_TYPE_Q5_1: return DS_TYPE_Q8_1;
    case DS_TYPE_Q4_K: case DS_TYPE_Q5_K: case DS_TYPE_Q6_K: return DS_TYPE_Q8_K;
    case DS_TYPE_BF16: return DS_TYPE_BF16;
    default: return DS_TYPE_F32;
    }
}

typedef float (*ds__dot_fn)(int K, const void *w, const void *x);
static ds__dot_fn ds__dot_ref(ds_type wt) {
    switch (wt) {
    case DS_TYPE_Q4_0: return ds__dot_q4_0_q8_0_ref;
    case DS_TYPE_Q4_1: return ds__dot_q4_1_q8_1_ref;
    case DS_TYPE_Q5_0: return ds__dot_q5_0_q8_0_ref;
    case DS_TYPE_Q5_1: return ds__dot_q5_1_q8_1_ref;
    case DS_TYPE_Q8_0: return ds__dot_q8_0_q8_0_ref;
    case DS_TYPE_Q4_K: return ds__dot_q4_k_q8_k_ref;
    case DS_TYPE_Q5_K: return ds__dot_q5_k_q8_k_ref;
    case DS_TYPE_IQ4_NL: return ds__dot_iq4_nl_q8_0_ref;
    case DS_TYPE_Q6_K: return ds__dot_q6_k_q8_k_ref;
    case DS_TYPE_F16: return ds__dot_f16_f32_ref;
    case DS_TYPE_BF16: return ds__dot_bf16_bf16_ref;
    default: return ds__dot_f32_f32_ref;
    }
}

/* One matmul call's operands. xa is x converted to the activation type (or x itself). */
typedef struct ds__mm {
    float *y;                 /* (T, N) */
    const float *x;           /* (T, K) */
    const uint8_t *w, *xa;    /* (N, K) in wt, (T, K) in the activation type */
    size_t w_row, xa_row;     /* bytes per row */
    int T, N, K;
    ds_type wt;
    int n_chunk, t_chunk, n_tiles; /* the task grid: tiles of t_chunk tokens x n_chunk rows */
    void (*gemm)(const struct ds__mm *m, int t0, int t1, int n0, int n1);
    void (*quantize)(ds_type at, const float *x, void *dst, int K);
} ds__mm;

/* y[t0:t1, n0:n1] */
typedef void (*ds__gemm_fn)(const ds__mm *m, int t0, int t1, int n0, int n1);
static void ds__gemm_ref(const ds__mm *m, int t0, int t1, int n0, int n1) {
    ds__dot_fn dot = ds__dot_ref(m->wt);
    int t, n;
    for (t = t0; t < t1; t++)
        for (n = n0; n < n1; n++) m->y[(size_t)t * m->N + n] = dot(m->K, m->w + (size_t)n * m->w_row, m->xa + (size_t)t * m->xa_row);
}

/* ---- element-wise reference kernels ------------------------------------------------------ */
static void ds__axpy_f32_ref(float *y, float a, const float *x, int n) {
    int i;
    for (i = 0; i < n; i++) y[i] += a * x[i];
}

/* 1 / rms(x) as llama.cpp computes it: float squares summed in order in double, the mean
   rounded to float, then 1.0f / sqrtf(mean + eps) in float. The sum is a serial chain, but
   it is one per row and tiny next to the matmuls; every kernel variant shares it. */
static float ds__rms_scale(const float *x, int n, float eps) {
    double ss = 0.0;
    float mean;
    int i;
    for (i = 0; i < n; i++) {
        float sq = x[i] * x[i];
        ss += (double)sq;
    }
    mean = (float)(ss / n);
    return 1.0f / sqrtf(mean + eps);
}

static void ds__rmsnorm_ref(float *y, const float *x, const float *w, int n, float eps) {
    float scale = ds__rms_scale(x, n, eps);
    int i;
    for (i = 0; i < n; i++) y[i] = x[i] * scale * w[i];
}

/* e^x by llama.cpp's vector algorithm (the form its AVX-512 build runs): n = x log2(e) rounded
   by the 1.5 * 2^23 shift, b = x - n ln2 in two fused steps, a degree-5 polynomial j ~ e^b,
   then j * 2^n; |n| > 192 gives 0 or inf. Softmax and SiLU use it, as llama.cpp's do, so
   their results agree bit for bit (about 1.5 ulp from the true e^x). */
static float ds__exp_ref(float x) {
    const float r = 12582912.0f;
    float z = fmaf(x, 1.44269502f, r), n = z - r;
    float b = fmaf(-n, 1.42860677e-06f, fmaf(-n, 0.693145752f, x)), u = b * b;
    float j = fmaf(fmaf(fmaf(0.00824739039f, b, 0.0418997668f), u, fmaf(0.166683957f, b, 0.499991268f)), u, fmaf(0.999999404f, b, 1.0f));
    if (n != n) return x + x;
    if (fabsf(n) > 192.0f) return n <= 0.0f ? 0.0f : INFINITY;
    return ldexpf(j, (int)n);
}

/* sum of 16 floats as a 512-bit unit halves them: (i, i+8), then (i, i+4), (i, i+2), (0, 1) */
static float ds__tree16(const float *a) {
    float t[8];
    int i;
    for (i = 0; i < 8; i++) t[i] = a[i] + a[i + 8];
    return ds__hsum8_tree(t);
}

/* Softmax as llama.cpp's: e^(x - max) per element; the sum accumulated in double over chunks
   of 16, each chunk summed by ds__tree16 (a short last chunk as if padded with zeros, which is
   what llama.cpp's padded attention rows hold); then x * (float)(1 / sum). */
static void ds__softmax_ref(float *x, int n) {
    float max = -INFINITY, inv;
    double sum = 0.0;
    int i, k;
    for (i = 0; i < n; i++) max = DS__MAX(max, x[i]);
    for (i = 0; i < n; i += 16) {
        float e[16];
        for (k = 0; k < 16; k++) e[k] = i + k < n ? (x[i + k] = ds__exp_ref(x[i + k] - max)) : 0.0f;
        sum += (double)ds__tree16(e);
    }
    inv = (float)(1.0 / sum);
    for (i = 0; i < n; i++) x[i] *= inv;
}

static void ds__swiglu_ref(float *y, const float *gate, const float *up, int n) {
    int i;
    for (i = 0; i < n; i++) y[i] = gate[i] / (1.0f + ds__exp_ref(-gate[i])) * up[i];
}

/* rotate pair i < count of each head by (cs[i], sn[i]): (x[i], x[i + off]) with neox, else
   (x[2i], x[2i + 1]) */
static void ds__rope_apply_ref(float *x, int n_heads, int head_dim, int count, int off, int neox, const float *cs, const float *sn) {
    int h, i;
    for (h = 0; h < n_heads; h++) {
        float *v = x + (size_t)h * head_dim;
        for (i = 0; i < count; i++) {
            int a = neox ? i : 2 * i, b = neox ? i + off : 2 * i + 1;
            float x0 = v[a], x1 = v[b];
            v[a] = fmaf(x0, cs[i], -(x1 * sn[i]));
            v[b] = fmaf(x0, sn[i], x1 * cs[i]);
        }
    }
}

/* ---- fast-path activation rows ------------------------------------------------------------ */
/* The SIMD matmuls read x quantized to Q8_0 / Q8_1 values laid out for vector loads: int8 q[K]
   | float d[nb] | float s[nb], each part 64-byte aligned (nb = K / 32). d and s hold the
   reference's f16-rounded scale and block sum (s = f16(d * sum q)), so the integer dots and
   the float scales are the reference's exactly. */
typedef struct ds__qx {
    const int8_t *q;
    const float *d, *s;
} ds__qx;
#define DS__A64(n) (((size_t)(n) + 63) & ~(size_t)63)
static size_t ds__qx_row_bytes(int K) { return DS__A64(K) + 2 * DS__A64(4 * (size_t)(K / DS__QK)); }
#if defined(DS__X86_SIMD) || defined(DS__NEON)
static ds__qx ds__qx_view(const uint8_t *row, int K) {
    ds__qx v;
    size_t a = DS__A64(4 * (size_t)(K / DS__QK));
    v.q = DS__CAST(const int8_t *, (const void *)row);
    v.d = DS__CAST(const float *, (const void *)(row + DS__A64(K)));
    v.s = DS__CAST(const float *, (const void *)(row + DS__A64(K) + a));
    return v;
}
#endif
#if defined(DS__X86_SIMD) || defined(DS__NEON)
/* The K-quant matmul loop every instruction set shares: one weight row at a time against up
   to 4 tokens; each super-block is unpacked once into an ST (UNPACK) and then dotted with each
   token's Q8_K block (DOT returns that super-block's float term of the sum). */
#define DS__DEFINE_KQ_GEMM(NAME, ATTR, BLOCK, ST, UNPACK, DOT)                                                   \
    ATTR static void NAME(const ds__mm *m, int t0, int t1, int n0, int n1) {                                   \
        const int nbk = m->K / DS__QK_K;                                                                       \
        int n, t, i, c;                                                                                        \
        for (n = n0; n < n1; n++) {                                                                            \
            const BLOCK *w = (const BLOCK *)(const void *)(m->w + (size_t)n * m->w_row);                       \
            for (t = t0; t < t1; t += 4) {                                                                     \
                const int ct = DS__MIN(4, t1 - t);                                                             \
                float sum[4] = {0, 0, 0, 0};                                                                   \
                for (i = 0; i < nbk; i++) {                                                                    \
                    ST st;                                                                                     \
                    UNPACK(&st, w + i);                                                                        \
                    for (c = 0; c < ct; c++)                                                                   \
                        sum[c] += DOT(&st, w + i, (const ds__block_q8_k *)(const void *)(m->xa + (size_t)(t + c) * m->xa_row) + i); \
                }                                                                                              \
                for (c = 0; c < ct; c++) m->y[(size_t)(t + c) * m->N + n] = sum[c];                            \
            }                                                                                                  \
        }                                                                                                      \
    }
#endif
#if defined(DS__NEON)
/* the scales of one block from its max |x| and the sum of its quantized values */
static void ds__qx_block_scales(uint8_t *row, int K, int b, float d, int isum) {
    ds__qx v = ds__qx_view(row, K);
    DS__CAST(float *, (void *)(uintptr_t)v.d)[b] = ds__f16_to_f32(ds__f32_to_f16(d));
    DS__CAST(float *, (void *)(uintptr_t)v.s)[b] = ds__f16_to_f32(ds__f32_to_f16((float)isum * d));
}
#endif

/* the integer-dot weight kinds of the SIMD matmul tiles, and the float ones */
enum { DS__QK_Q4_0, DS__QK_Q4_1, DS__QK_Q8_0 };
/* bytes of one weight block of an integer-dot kind, and where its quants start (Q4_0 / Q4_1) */
#define DS__QK_BYTES(kind) ((kind) == DS__QK_Q4_1 ? sizeof(ds__block_q4_1) : (kind) == DS__QK_Q4_0 ? sizeof(ds__block_q4_0) : sizeof(ds__block_q8_0))
#define DS__QK_QS(kind) ((kind) == DS__QK_Q4_1 ? offsetof(ds__block_q4_1, qs) : offsetof(ds__block_q4_0, qs))
enum { DS__FK_F32, DS__FK_F16, DS__FK_BF16 };
#if defined(DS__X86_SIMD) || defined(DS__NEON)
static float ds__load1(const uint8_t *p, int i, const int kind) {
    if (kind == DS__FK_F32) return ((const float *)(const void *)p)[i];
    if (kind == DS__FK_F16) return ds__f16_to_f32(((const uint16_t *)(const void *)p)[i]);
    return ds__bf16_to_f32(((const uint16_t *)(const void *)p)[i]);
}
#endif
/* fully unrolled loops over a tile, so its accumulators live in registers; DS__HOT: the hot
   kernels start on a 64-byte line, so where their loops fall in the fetch and decoded-op cache
   windows stays put when unrelated code above them grows or shrinks */
#if defined(__GNUC__) || defined(__clang__)
#define DS__UNROLL4 _Pragma("GCC unroll 4")
#define DS__PREFETCH(p) __builtin_prefetch((const void *)(p))
#define DS__HOT __attribute__((aligned(64)))
#else
#define DS__UNROLL4
#define DS__PREFETCH(p) ((void)0)
#define DS__HOT
#endif

#if defined(DS__X86_SIMD)
/* ============================ x86: AVX2 + FMA + F16C, AVX-512 ============================ */
/* the instruction sets of the x86 kernels: one target string per level (each implies the
   one before), DS__<LEVEL> for a kernel, DS__<LEVEL>_INLINE for its always-inlined helpers */
#define DS__ISA_AVX2 "avx2,fma,f16c"
#define DS__ISA_AVXVNNI DS__ISA_AVX2 ",avxvnni"
#define DS__ISA_AVX512 DS__ISA_AVX2 ",avx512f,avx512bw,avx512vl"
#define DS__ISA_VNNI512 DS__ISA_AVX512 ",avx512vnni"
#define DS__ISA_BF16_512 DS__ISA_AVX512 ",avx512bf16"
#define DS__AVX2 __attribute__((target(DS__ISA_AVX2)))
#define DS__AVX512 __attribute__((target(DS__ISA_AVX512)))
#define DS__AVX512BF16 __attribute__((target(DS__ISA_BF16_512)))
#define DS__AVX2_INLINE static inline __attribute__((always_inline, target(DS__ISA_AVX2)))

DS__AVX2_INLINE float ds__hsum8_avx2(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
DS__AVX2_INLINE float ds__hmax8_avx2(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
DS__AVX2_INLINE int ds__hsum8i_avx2(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}
DS__AVX2_INLINE float ds__f16_avx2(uint16_t h) { return _cvtsh_ss(h); }
/* x (K) -> a fast-path activation row, the reference's values bit for bit */
DS__AVX2 DS__HOT static void ds__quantize_qx_avx2(ds_type at, const float *x, void *dst, int K) {
    uint8_t *row = DS__CAST(uint8_t *, dst);
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    int b, j;
    (void)at;
    for (b = 0; b < K / DS__QK; b++, x += DS__QK) {
        __m256 v[4], amax = _mm256_setzero_ps(), id;
        __m256i q[4], p;
        float d, m;
        for (j = 0; j < 4; j++) {
            v[j] = _mm256_loadu_ps(x + 8 * j);
            amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, v[j]));
        }
        m = ds__hmax8_avx2(amax);
        d = m / 127.0f;
        id = _mm256_set1_ps(m != 0.0f ? 127.0f / m : 0.0f);
        for (j = 0; j < 4; j++) q[j] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v[j], id), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        p = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
        _mm256_storeu_si256((__m256i *)(void *)(row + b * DS__QK), _mm256_permutevar8x32_epi32(p, order));
        { /* ds__qx_block_scales with F16C's conversions (the same rounding, to nearest even) */
            ds__qx v = ds__qx_view(row, K);
            int isum = ds__hsum8i_avx2(_mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3])));
            __m128 ds = _mm_cvtph_ps(_mm_cvtps_ph(_mm_setr_ps(d, (float)isum * d, 0.0f, 0.0f), _MM_FROUND_TO_NEAREST_INT));
            DS__CAST(float *, (void *)(uintptr_t)v.d)[b] = _mm_cvtss_f32(ds);
            DS__CAST(float *, (void *)(uintptr_t)v.s)[b] = _mm_cvtss_f32(_mm_movehdup_ps(ds));
        }
    }
}

/* ---- quantized matmul tiles -------------------------------------------------------------- */
/* A tile is up to 4 weight rows x CT tokens over the whole K: each weight block is unpacked once
   per tile and each activation block loaded once, so prefill reuses both from registers. Per
   block and (row, token): one integer dot of 32 pairs into 8 int32 lanes, a conversion, and a
   multiply-add by d_w * d_x; the lanes are summed once at the end. The integer dot differs by
   instruction set (AVX2 maddubs+madd, AVX-VNNI / AVX512-VNNI dpbusd), so the tile is stamped
   out once per set by DS__DEFINE_QTILES. The u8 x s8 dots need unsigned weights: Q8_0's sign
   moves onto x (|w| * sign(x, w)); Q4_0's offset 8 is folded in per lane (each lane starts at
   -8 * its own 4 x values), so every lane holds an exact partial sum of the true terms and the
   float rounding stays relative to sum |w x|, as in the reference. */

#define DS__DEFINE_QTILES(ISA, TARGET, DOT_U8S8)                            \
    static inline __attribute__((always_inline, target(TARGET))) void ds__qtile_##ISA(                  \
        const ds__mm *m, const int kind, int n, int nr, int t, int ct, const int CT) {                 \
        const int nb = m->K / DS__QK;                                                                  \
        const __m256i lo4 = _mm256_set1_epi8(0x0f), shift = _mm256_setr_epi64x(0, 0, 4, 4);            \
        const uint8_t *wr[4];                                                                          \
        ds__qx xr[4];                                                                                  \
        __m256 acc[4][4];                                                                              \
        __m128 macc[4];                                                                                \
        int r, c, b;                                                                                   \
        DS__UNROLL4 for (r = 0; r < 4; r++) wr[r] = m->w + (size_t)(n + DS__MIN(r, nr - 1)) * m->w_row;            \
        DS__UNROLL4 for (c = 0; c < CT; c++) {                                                                     \
            xr[c] = ds__qx_view(m->xa + (size_t)(t + DS__MIN(c, ct - 1)) * m->xa_row, m->K);           \
            macc[c] = _mm_setzero_ps();                                                                \
            DS__UNROLL4 for (r = 0; r < 4; r++) acc[r][c] = _mm256_setzero_ps();                                   \
        }                                                                                              \
        for (b = 0; b < nb; b++) {                                                                     \
            __m256i wq[4];                                                                             \
            __m256 dw[4];                                                                              \
            __m128 mw = _mm_setzero_ps();                                                              \
            DS__UNROLL4 for (r = 0; r < 4; r++) {                                                                  \
                if (CT == 1) DS__PREFETCH(wr[r] + (size_t)b * DS__QK_BYTES(kind) + 4 * m->w_row); \
                if (kind == DS__QK_Q8_0) {                                                             \
                    const ds__block_q8_0 *bl = DS__CAST(const ds__block_q8_0 *, (const void *)wr[r]) + b; \
                    wq[r] = _mm256_loadu_si256((const __m256i *)(const void *)bl->qs);                 \
                    dw[r] = _mm256_set1_ps(_cvtsh_ss(bl->d));                                          \
                } else {                                                                               \
                    const uint8_t *qs = wr[r] + (size_t)b * DS__QK_BYTES(kind) + DS__QK_QS(kind); \
                    __m256i raw = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)qs)); \
                    wq[r] = _mm256_and_si256(_mm256_srlv_epi64(raw, shift), lo4);                      \
                    dw[r] = _mm256_set1_ps(_cvtsh_ss(*(const uint16_t *)(const void *)(qs - DS__QK_QS(kind)))); \
                }                                                                                      \
            }                                                                                          \
            if (kind == DS__QK_Q4_1) {                                                                 \
                const ds__block_q4_1 *b0 = DS__CAST(const ds__block_q4_1 *, (const void *)wr[0]) + b;  \
                const ds__block_q4_1 *b1 = DS__CAST(const ds__block_q4_1 *, (const void *)wr[1]) + b;  \
                const ds__block_q4_1 *b2 = DS__CAST(const ds__block_q4_1 *, (const void *)wr[2]) + b;  \
                const ds__block_q4_1 *b3 = DS__CAST(const ds__block_q4_1 *, (const void *)wr[3]) + b;  \
                mw = _mm_cvtph_ps(_mm_setr_epi16((short)b0->m, (short)b1->m, (short)b2->m, (short)b3->m, 0, 0, 0, 0)); \
            }                                                                                          \
            DS__UNROLL4 for (c = 0; c < CT; c++) {                                                                 \
                const __m256i xq = _mm256_load_si256((const __m256i *)(const void *)(xr[c].q + b * DS__QK)); \
                const __m256 dx = _mm256_set1_ps(xr[c].d[b]);                                          \
                const __m256i start = kind == DS__QK_Q4_0 ? _mm256_sub_epi32(_mm256_setzero_si256(), DOT_U8S8(_mm256_setzero_si256(), _mm256_set1_epi8(8), xq)) \
                                                          : _mm256_setzero_si256();                    \
                DS__UNROLL4 for (r = 0; r < 4; r++) {                                                              \
                    __m256i p = kind == DS__QK_Q8_0 ? DOT_U8S8(start, _mm256_sign_epi8(wq[r], wq[r]), _mm256_sign_epi8(xq, wq[r])) \
                                                    : DOT_U8S8(start, wq[r], xq);                      \
                    acc[r][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_mul_ps(dw[r], dx), acc[r][c]); \
                }                                                                                      \
                if (kind == DS__QK_Q4_1) macc[c] = _mm_fmadd_ps(mw, _mm_set1_ps(xr[c].s[b]), macc[c]);   \
            }                                                                                          \
        }                                                                                              \
        DS__UNROLL4 for (c = 0; c < ct; c++) {                                                                     \
            float mm[4];                                                                               \
            _mm_storeu_ps(mm, macc[c]);                                                                \
            DS__UNROLL4 for (r = 0; r < nr; r++) m->y[(size_t)(t + c) * m->N + n + r] = ds__hsum8_avx2(acc[r][c]) + mm[r]; \
        }                                                                                              \
    }                                                                                                  \
    static inline __attribute__((always_inline, target(TARGET))) void ds__qgemm_##ISA(                  \
        const ds__mm *m, const int kind, int t0, int t1, int n0, int n1) {                             \
        int n, t;                                                                                      \
        for (n = n0; n < n1; n += 4) {                                                                 \
            for (t = t0; t + 4 <= t1; t += 4) ds__qtile_##ISA(m, kind, n, DS__MIN(4, n1 - n), t, 4, 4); \
            for (; t < t1; t++) ds__qtile_##ISA(m, kind, n, DS__MIN(4, n1 - n), t, 1, 1);              \
        }                                                                                              \
    }                                                                                                  \
    __attribute__((target(TARGET))) DS__HOT static void ds__gemm_q4_0_##ISA(const ds__mm *m, int t0, int t1, int n0, int n1) { \
        ds__qgemm_##ISA(m, DS__QK_Q4_0, t0, t1, n0, n1);                                               \
    }                                                                                                  \
    __attribute__((target(TARGET))) DS__HOT static void ds__gemm_q4_1_##ISA(const ds__mm *m, int t0, int t1, int n0, int n1) { \
        ds__qgemm_##ISA(m, DS__QK_Q4_1, t0, t1, n0, n1);                                               \
    }                                                                                                  \
    __attribute__((target(TARGET))) DS__HOT static void ds__gemm_q8_0_##ISA(const ds__mm *m, int t0, int t1, int n0, int n1) { \
        ds__qgemm_##ISA(m, DS__QK_Q8_0, t0, t1, n0, n1);                                               \
    }

/* u8 x s8 dot of 32 pairs into 8 int32 lanes, added to acc */
#define DS__DOT_U8S8_AVX2(acc, u, s) _mm256_add_epi32((acc), _mm256_madd_epi16(_mm256_maddubs_epi16((u), (s)), _mm256_set1_epi16(1)))
#define DS__DOT_U8S8_AVXVNNI(acc, u, s) _mm256_dpbusd_avx_epi32((acc), (u), (s))
DS__DEFINE_QTILES(avx2, DS__ISA_AVX2, DS__DOT_U8S8_AVX2)
DS__DEFINE_QTILES(avxvnni, DS__ISA_AVXVNNI, DS__DOT_U8S8_AVXVNNI)

/* ---- AVX512-VNNI: the same tile on 512-bit vectors, two blocks per instruction ------------ */
/* GCC 12 in C++ mode reports its own AVX-512 intrinsics' undefined pass-through operands as
   "may be used uninitialized" once they are inlined (a compiler bug): silenced for this part */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
/* Weight-row pairs (r, r + 1) fill the two 256-bit halves, so each half is one row's 8 lanes
   and a block's dot still accumulates into them in block order: the float order of the
   reference (and of the AVX2 tile), bit for bit. The activation block is broadcast to both. */
static inline __attribute__((always_inline, target(DS__ISA_VNNI512))) void ds__qtile_zmm(
    const ds__mm *m, const int kind, int n, int nr, int t, int ct, const int CT) {
    const int nb = m->K / DS__QK, bsz = (int)DS__QK_BYTES(kind);
    const __m512i lo4 = _mm512_set1_epi8(0x0f), shift = _mm512_setr_epi64(0, 0, 4, 4, 0, 0, 4, 4);
    const __m512i half_idx = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2);
    const __m512i pair_idx = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    const uint8_t *wr[4];
    ds__qx xr[4];
    __m512 acc[2][4];
    __m128 macc[4];
    int r, c, b, h;
    DS__UNROLL4 for (r = 0; r < 4; r++) wr[r] = m->w + (size_t)(n + DS__MIN(r, nr - 1)) * m->w_row;
    DS__UNROLL4 for (c = 0; c < 4; c++) { /* all 4 columns, so no compiler sees a partial array */
        xr[c] = ds__qx_view(m->xa + (size_t)(t + DS__MIN(c, ct - 1)) * m->xa_row, m->K);
        acc[0][c] = acc[1][c] = _mm512_setzero_ps();
        macc[c] = _mm_setzero_ps();
    }
    for (b = 0; b < nb; b++) {
        const size_t o = (size_t)b * bsz;
        __m512i wq[2];
        __m512 dw[2];
        __m128 dm[2], mw = _mm_setzero_ps();
        DS__UNROLL4 for (h = 0; h < 2; h++) {
            const uint8_t *b0 = wr[2 * h] + o, *b1 = wr[2 * h + 1] + o;
            if (CT == 1 && !(b & 1)) { /* decode streams weights: fetch the next tile's, a line per two blocks */
                DS__PREFETCH(b0 + 4 * m->w_row);
                DS__PREFETCH(b1 + 4 * m->w_row);
            }
            /* the f16 scales of both rows: lanes d0, d1 (Q4_1: d0, m0, d1, m1) */
            dm[h] = kind == DS__QK_Q4_1
                            ? _mm_cvtph_ps(_mm_unpacklo_epi32(_mm_cvtsi32_si128(*(const int32_t *)(const void *)b0), _mm_cvtsi32_si128(*(const int32_t *)(const void *)b1)))
                            : _mm_cvtph_ps(_mm_unpacklo_epi16(_mm_cvtsi32_si128(*(const uint16_t *)(const void *)b0), _mm_cvtsi32_si128(*(const uint16_t *)(const void *)b1)));
            if (kind == DS__QK_Q8_0) {
                wq[h] = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(const void *)(b0 + 2))), _mm256_loadu_si256((const __m256i *)(const void *)(b1 + 2)), 1);
                dw[h] = _mm512_permutexvar_ps(pair_idx, _mm512_castps128_ps512(dm[h]));
            } else {
                const int qo = (int)DS__QK_QS(kind);
                __m512i raw = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)(b0 + qo)))),
                                                 _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)(b1 + qo))), 1);
                wq[h] = _mm512_and_si512(_mm512_srlv_epi64(raw, shift), lo4);
                dw[h] = _mm512_permutexvar_ps(kind == DS__QK_Q4_1 ? half_idx : pair_idx, _mm512_castps128_ps512(dm[h]));
            }
        }
        if (kind == DS__QK_Q4_1) mw = _mm_shuffle_ps(dm[0], dm[1], _MM_SHUFFLE(3, 1, 3, 1)); /* m of rows 0..3 */
        DS__UNROLL4 for (c = 0; c < CT; c++) {
            const __m512i xq = _mm512_broadcast_i64x4(_mm256_load_si256((const __m256i *)(const void *)(xr[c].q + b * DS__QK)));
            const __m512 dx = _mm512_set1_ps(xr[c].d[b]);
            __m512i start = _mm512_setzero_si512();
            if (kind == DS__QK_Q4_0) start = _mm512_sub_epi32(start, _mm512_dpbusd_epi32(start, _mm512_set1_epi8(8), xq));
            DS__UNROLL4 for (h = 0; h < 2; h++) {
                __m512i pr;
                if (kind == DS__QK_Q8_0) {
                    /* |w| as the unsigned operand, w's sign moved onto x (no vpsignb on zmm) */
                    __mmask64 neg = _mm512_movepi8_mask(wq[h]);
                    pr = _mm512_dpbusd_epi32(start, _mm512_abs_epi8(wq[h]), _mm512_mask_sub_epi8(xq, neg, _mm512_setzero_si512(), xq));
                } else {
                    pr = _mm512_dpbusd_epi32(start, wq[h], xq);
                }
                acc[h][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(pr), _mm512_mul_ps(dw[h], dx), acc[h][c]);
            }
            if (kind == DS__QK_Q4_1) macc[c] = _mm_fmadd_ps(mw, _mm_set1_ps(xr[c].s[b]), macc[c]);
        }
    }
    for (c = 0; c < ct; c++) {
        float mm[4];
        _mm_storeu_ps(mm, macc[c]);
        for (r = 0; r < nr; r++) {
            __m256 a = r & 1 ? _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc[r >> 1][c]), 1)) : _mm512_castps512_ps256(acc[r >> 1][c]);
            m->y[(size_t)(t + c) * m->N + n + r] = ds__hsum8_avx2(a) + mm[r];
        }
    }
}
static inline __attribute__((always_inline, target(DS__ISA_VNNI512))) void ds__qgemm_zmm(const ds__mm *m, const int kind, int t0, int t1, int n0, int n1) {
    int n, t;
    for (n = n0; n < n1; n += 4) {
        for (t = t0; t + 4 <= t1; t += 4) ds__qtile_zmm(m, kind, n, DS__MIN(4, n1 - n), t, 4, 4);
        for (; t < t1; t++) ds__qtile_zmm(m, kind, n, DS__MIN(4, n1 - n), t, 1, 1);
    }
}
__attribute__((target(DS__ISA_VNNI512))) DS__HOT static void ds__gemm_q4_0_zmm(const ds__mm *m, int t0, int t1, int n0, int n1) { ds__qgemm_zmm(m, DS__QK_Q4_0, t0, t1, n0, n1); }
__attribute__((target(DS__ISA_VNNI512))) DS__HOT static void ds__gemm_q4_1_zmm(const ds__mm *m, int t0, int t1, int n0, int n1) { ds__qgemm_zmm(m, DS__QK_Q4_1, t0, t1, n0, n1); }
__attribute__((target(DS__ISA_VNNI512))) DS__HOT static void ds__gemm_q8_0_zmm(const ds__mm *m, int t0, int t1, int n0, int n1) { ds__qgemm_zmm(m, DS__QK_Q8_0, t0, t1, n0, n1); }

/* ---- float-weight matmul tiles (F32, F16 via F16C, BF16) ---------------------------------- */
/* 4 weight rows x CT tokens, 8 columns per step; the K % 8 tail is summed in scalar. x is F32,
   or BF16 for BF16 weights (the activation type the reference uses). */
DS__AVX2_INLINE __m256 ds__load8_avx2(const uint8_t *p, int i, const int kind) {
    if (kind == DS__FK_F32) return _mm256_loadu_ps((const float *)(const void *)p + i);
    if (kind == DS__FK_F16) return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)((const uint16_t *)(const void *)p + i)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(const void *)((const uint16_t *)(const void *)p + i))), 16));
}
DS__AVX2_INLINE void ds__ftile_avx2(const ds__mm *m, const int kind, int n, int nr, int t, int ct, const int CT) {
    const int xkind = kind == DS__FK_BF16 ? DS__FK_BF16 : DS__FK_F32, K = m->K;
    const uint8_t *wr[4], *xr[2];
    __m256 acc[4][2];
    int r, c, k;
    DS__UNROLL4 for (r = 0; r < 4; r++) wr[r] = m->w + (size_t)(n + DS__MIN(r, nr - 1)) * m->w_row;
    DS__UNROLL4 for (c = 0; c < CT; c++) {
        xr[c] = m->xa + (size_t)(t + DS__MIN(c, ct - 1)) * m->xa_row;
        DS__UNROLL4 for (r = 0; r < 4; r++) acc[r][c] = _mm256_setzero_ps();
    }
    for (k = 0; k + 8 <= K; k += 8) {
        __m256 w[4];
        DS__UNROLL4 for (r = 0; r < 4; r++) w[r] = ds__load8_avx2(wr[r], k, kind);
        DS__UNROLL4 for (c = 0; c < CT; c++) {
            __m256 xv = ds__load8_avx2(xr[c], k, xkind);
            DS__UNROLL4 for (r = 0; r < 4; r++) acc[r][c] = _mm256_fmadd_ps(w[r], xv, acc[r][c]);
        }
    }
    for (c = 0; c < ct; c++) {
        for (r = 0; r < nr; r++) {
            float s = ds__hsum8_avx2(acc[r][c]);
            int i;
            for (i = k; i < K; i++) s += ds__load1(wr[r], i, kind) * ds__load1(xr[c], i, xkind);
            m->y[(size_t)(t + c) * m->N + n + r] = s;
        }
    }
}
DS__AVX2_INLINE void ds__fgemm_avx2(const ds__mm *m, const int kind, int t0, int t1, int n0, int n1) {
    int n, t;
    for (n = n0; n < n1; n += 4) {
        for (t = t0; t + 2 <= t1; t += 2) ds__ftile_avx2(m, kind, n, DS__MIN(4, n1 - n), t, 2, 2);
        for (; t < t1; t++) ds__ftile_avx2(m, kind, n, DS__MIN(4, n1 - n), t, 1, 1);
    }
}
DS__AVX2 static void ds__gemm_f32_avx2(const ds__mm *m, int t0, int t1, int n0, int n1) { ds__fgemm_avx2(m, DS__FK_F32, t0, t1, n0, n1); }
DS__AVX2 static void ds__gemm_f16_avx2(const ds__mm *m, int t0, int t1, int n0, int n1) { ds__fgemm_avx2(m, DS__FK_F16, t0, t1, n0, n1); }
DS__AVX2 static void ds__gemm_bf16_avx2(const ds__mm *m, int t0, int t1, int n0, int n1) { ds__fgemm_avx2(m, DS__FK_BF16, t0, t1, n0, n1); }

/* BF16 with AVX512_BF16: vdpbf16ps multiplies 32 bf16 pairs exactly and adds them in f32
   (it treats denormal bf16 inputs as zero: a difference below 1e-37 per term) */
__attribute__((target(DS__ISA_BF16_512))) static void ds__gemm_bf16_zmm(const ds__mm *m, int t0, int t1, int n0, int n1) {
    const int K = m->K;
    int n, t, k, r;
    for (n = n0; n < n1; n += 4) {
        const int nr = DS__MIN(4, n1 - n);
        const uint16_t *wr[4];
        for (r = 0; r < 4; r++) wr[r] = (const uint16_t *)(const void *)(m->w + (size_t)(n + DS__MIN(r, nr - 1)) * m->w_row);
        for (t = t0; t < t1; t++) {
            const uint16_t *x = (const uint16_t *)(const void *)(m->xa + (size_t)t * m->xa_row);
            __m512 acc[4];
            DS__UNROLL4 for (r = 0; r < 4; r++) acc[r] = _mm512_setzero_ps();
            for (k = 0; k < K; k += 32) {
                __mmask32 mk = K - k >= 32 ? 0xffffffffu : (1u << (K - k)) - 1u;
                __m512i xv = _mm512_maskz_loadu_epi16(mk, x + k);
                DS__UNROLL4 for (r = 0; r < 4; r++) acc[r] = _mm512_dpbf16_ps(acc[r], (__m512bh)xv, (__m512bh)_mm512_maskz_loadu_epi16(mk, wr[r] + k));
            }
            for (r = 0; r < nr; r++) m->y[(size_t)t * m->N + n + r] = _mm512_reduce_add_ps(acc[r]);
        }
    }
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

/* ---- Q5_0 / Q5_1 matmuls (Q8_0 / Q8_1 activations) ------------------------------------------ */
/* The reference's order (ds__dot_block_lanes): per block, 8 lanes of exact 4-element integer
   sums scaled by one FMA each, Q5_1's m * s in its own fused chain. The 5-bit values are
   unpacked once per weight block and reused for up to 4 tokens. */
DS__AVX2_INLINE __m256i ds__q5_bytes_avx2(const uint8_t *qh, const uint8_t *qs, int q5_1) {
    const __m128i lo = _mm_loadu_si128((const __m128i *)(const void *)qs);
    const __m256i nib = _mm256_and_si256(_mm256_insertf128_si256(_mm256_castsi128_si256(lo), _mm_srli_epi16(lo, 4), 1), _mm256_set1_epi8(0x0f));
    uint32_t h;
    __m256i bits;
    memcpy(&h, qh, 4);
    /* byte j = 0xff where bit j of h is set */
    bits = _mm256_shuffle_epi8(_mm256_set1_epi32((int)h), _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0));
    bits = _mm256_cmpeq_epi8(_mm256_or_si256(bits, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe)), _mm256_set1_epi64x(-1));
    if (q5_1) return _mm256_or_si256(nib, _mm256_and_si256(bits, _mm256_set1_epi8(0x10)));  /* 0..31 */
    return _mm256_or_si256(nib, _mm256_andnot_si256(bits, _mm256_set1_epi8((char)0xf0))); /* q - 16 as i8 */
}

/* Q5_0, Q5_1 and (nl) IQ4_NL, whose signed values come from its grid by a byte shuffle */
DS__AVX2_INLINE void ds__gemm_q5_avx2(const ds__mm *m, int q5_1, int nl, int t0, int t1, int n0, int n1) {
    const int nb = m->K / DS__QK;
    const size_t wb = nl ? sizeof(ds__block_iq4_nl) : q5_1 ? sizeof(ds__block_q5_1) : sizeof(ds__block_q5_0);
    const size_t xb = q5_1 ? sizeof(ds__block_q8_1) : sizeof(ds__block_q8_0);
    const __m256i ones = _mm256_set1_epi16(1), lo4 = _mm256_set1_epi8(0x0f);
    const __m256i grid = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)ds__iq4nl_values));
    int n, t, i, c;
    for (n = n0; n < n1; n++) {
        const uint8_t *w = m->w + (size_t)n * m->w_row;
        for (t = t0; t < t1; t += 4) {
            const int ct = DS__MIN(4, t1 - t);
            __m256 acc[4];
            float ms[4] = {0, 0, 0, 0};
            for (c = 0; c < 4; c++) acc[c] = _mm256_setzero_ps();
            for (i = 0; i < nb; i++) {
                const uint8_t *wi = w + (size_t)i * wb;
                const ds__block_q5_1 *w1 = (const ds__block_q5_1 *)(const void *)wi;
                const ds__block_q5_0 *w0 = (const ds__block_q5_0 *)(const void *)wi;
                const ds__block_iq4_nl *wn = (const ds__block_iq4_nl *)(const void *)wi;
                __m256i q, aq;
                float dw;
                if (nl) {
                    const __m128i v = _mm_loadu_si128((const __m128i *)(const void *)wn->qs);
                    q = _mm256_and_si256(_mm256_setr_m128i(v, _mm_srli_epi16(v, 4)), lo4);
                    q = _mm256_shuffle_epi8(grid, q);
                } else {
                    q = q5_1 ? ds__q5_bytes_avx2(w1->qh, w1->qs, 1) : ds__q5_bytes_avx2(w0->qh, w0->qs, 0);
                }
                aq = q5_1 ? q : _mm256_sign_epi8(q, q);
                dw = ds__f16_avx2(nl ? wn->d : q5_1 ? w1->d : w0->d);
                for (c = 0; c < ct; c++) {
                    const uint8_t *xi = m->xa + (size_t)(t + c) * m->xa_row + (size_t)i * xb;
                    const int8_t *xq = q5_1 ? ((const ds__block_q8_1 *)(const void *)xi)->qs : ((const ds__block_q8_0 *)(const void *)xi)->qs;
                    __m256i xv = _mm256_loadu_si256((const __m256i *)(const void *)xq), s;
                    if (!q5_1) xv = _mm256_sign_epi8(xv, q);
                    s = _mm256_madd_epi16(_mm256_maddubs_epi16(aq, xv), ones);
                    acc[c] = _mm256_fmadd_ps(_mm256_set1_ps(dw * ds__f16_avx2(((const ds__block_q8_1 *)(const void *)xi)->d)), _mm256_cvtepi32_ps(s), acc[c]);
                    if (q5_1) ms[c] = fmaf(ds__f16_avx2(w1->m), ds__f16_avx2(((const ds__block_q8_1 *)(const void *)xi)->s), ms[c]);
                }
            }
            for (c = 0; c < ct; c++) m->y[(size_t)(t + c) * m->N + n] = ds__hsum8_avx2(acc[c]) + ms[c];
        }
    }
}
DS__AVX2 static void ds__gemm_q5_0_avx2(const ds__mm *m, int t0, int t1, int n0, int n1) { ds__gemm_q5_avx2(m, 0, 0, t0, t1, n0, n1); }
DS__AVX2 static void ds__gemm_q5_1_avx2(const ds__mm *m, int t0, int t1, int n0, int n1) { ds__gemm_q5_avx2(m, 1, 0, t0, t1, n0, n1); }
DS__AVX2 static void ds__gemm_iq4_nl_avx2(const ds__mm *m, int t0, int t1, int n0, int n1) { ds__gemm_q5_avx2(m, 0, 1, t0, t1, n0, n1); }

/* ---- K-quant matmuls (Q4_K, Q6_K with Q8_K activations) ----------------------------------- */
/* One weight row at a time against up to 4 tokens: the super-block's 6-bit scales are unpacked
   once and its 256 values once, then reused per token. Within a super-block everything is
   integer (the scales enter through madd's 16-bit multiplier), so each super-block's float
   terms are the reference's bit for bit and only the order of nothing changes. */
DS__AVX2_INLINE int ds__dot_scaled_avx2(__m256i u, const int8_t *x, __m256i scales16) {
    return ds__hsum8i_avx2(_mm256_madd_epi16(_mm256_maddubs_epi16(u, _mm256_loadu_si256((const __m256i *)(const void *)x)), scales16));
}

/* Q4_K and Q5_K (qh: bit 4 of sub-block j's levels is bit j of the qh bytes; NULL for Q4_K):
   the two blocks begin alike (d, dmin, scales), so one unpacking and one dot serve both */
typedef struct ds__q4_k_avx2 {
    __m256i q[8], sc16[8];
    int mn[8];
    float d, dmin;
} ds__q4_k_avx2;
DS__AVX2_INLINE void ds__k4_unpack_avx2(ds__q4_k_avx2 *st, const ds__block_q4_k *w, const uint8_t *qs, const uint8_t *qh) {
    const __m256i lo4 = _mm256_set1_epi8(0x0f), one = _mm256_set1_epi8(1);
    __m256i hb = _mm256_setzero_si256();
    int j;
    st->d = ds__f16_avx2(w->d);
    st->dmin = ds__f16_avx2(w->dmin);
    for (j = 0; j < 8; j++) {
        int sc;
        ds__q4_k_scale_min(w->scales, j, &sc, &st->mn[j]);
        st->sc16[j] = _mm256_set1_epi16((short)sc);
    }
    if (qh) hb = _mm256_loadu_si256((const __m256i *)(const void *)qh);
    for (j = 0; j < 4; j++) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)(qs + 32 * j));
        st->q[2 * j] = _mm256_and_si256(v, lo4);
        st->q[2 * j + 1] = _mm256_and_si256(_mm256_srli_epi16(v, 4), lo4);
        if (qh) { /* bits 2j and 2j + 1 of each qh byte, moved to bit 4 */
            st->q[2 * j] = _mm256_or_si256(st->q[2 * j], _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2 * j), one), 4));
            st->q[2 * j + 1] = _mm256_or_si256(st->q[2 * j + 1], _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2 * j + 1), one), 4));
        }
    }
}
DS__AVX2_INLINE void ds__q4_k_unpack_avx2(ds__q4_k_avx2 *st, const ds__block_q4_k *w) { ds__k4_unpack_avx2(st, w, w->qs, NULL); }
DS__AVX2_INLINE void ds__q5_k_unpack_avx2(ds__q4_k_avx2 *st, const ds__block_q5_k *w) {
    ds__k4_unpack_avx2(st, (const ds__block_q4_k *)(const void *)w, w->qs, w->qh);
}
DS__AVX2_INLINE float ds__k4_dot_avx2(const ds__q4_k_avx2 *st, const void *w, const ds__block_q8_k *x) {
    int sq = 0, sm = 0, j;
    (void)w;
    for (j = 0; j < 8; j++) {
        sq += ds__dot_scaled_avx2(st->q[j], x->qs + 32 * j, st->sc16[j]);
        sm += st->mn[j] * (x->bsums[2 * j] + x->bsums[2 * j + 1]);
    }
    return x->d * (st->d * (float)sq - st->dmin * (float)sm);
}
DS__DEFINE_KQ_GEMM(ds__gemm_q4_k_avx2, DS__AVX2, ds__block_q4_k, ds__q4_k_avx2, ds__q4_k_unpack_avx2, ds__k4_dot_avx2)
DS__DEFINE_KQ_GEMM(ds__gemm_q5_k_avx2, DS__AVX2, ds__block_q5_k, ds__q4_k_avx2, ds__q5_k_unpack_avx2, ds__k4_dot_avx2)

/* Q6_K: the 6-bit values as unsigned q + 32 (maddubs needs an unsigned operand); the 32 * x
   part comes off through Q8_K's block sums */
typedef struct ds__q6_k_avx2 {
    __m256i q[8], sc16[8];
    float d;
} ds__q6_k_avx2;
DS__AVX2_INLINE void ds__q6_k_unpack_avx2(ds__q6_k_avx2 *st, const ds__block_q6_k *w) {
    const __m256i lo4 = _mm256_set1_epi8(0x0f), three = _mm256_set1_epi8(3);
    int h, k;
    st->d = ds__f16_avx2(w->d);
    for (h = 0; h < 2; h++) {
        const __m256i la = _mm256_loadu_si256((const __m256i *)(const void *)(w->ql + 64 * h));
        const __m256i lb = _mm256_loadu_si256((const __m256i *)(const void *)(w->ql + 64 * h + 32));
        const __m256i hb = _mm256_loadu_si256((const __m256i *)(const void *)(w->qh + 32 * h));
        for (k = 0; k < 4; k++) {
            __m256i lo = k & 1 ? lb : la, hi2;
            const int8_t *sc = w->scales + 8 * h + 2 * k;
            lo = k & 2 ? _mm256_and_si256(_mm256_srli_epi16(lo, 4), lo4) : _mm256_and_si256(lo, lo4);
            hi2 = _mm256_and_si256(_mm256_srli_epi16(hb, 2 * k), three);
            st->q[4 * h + k] = _mm256_or_si256(lo, _mm256_slli_epi16(hi2, 4));
            st->sc16[4 * h + k] = _mm256_setr_m128i(_mm_set1_epi16(sc[0]), _mm_set1_epi16(sc[1]));
        }
    }
}
DS__AVX2_INLINE float ds__q6_k_dot_avx2(const ds__q6_k_avx2 *st, const ds__block_q6_k *w, const ds__block_q8_k *x) {
    int sq = 0, so = 0, k;
    for (k = 0; k < 8; k++) sq += ds__dot_scaled_avx2(st->q[k], x->qs + 32 * k, st->sc16[k]);
    for (k = 0; k < 16; k++) so += w->scales[k] * x->bsums[k];
    return st->d * x->d * (float)(sq - 32 * so);
}
DS__DEFINE_KQ_GEMM(ds__gemm_q6_k_avx2, DS__AVX2, ds__block_q6_k, ds__q6_k_avx2, ds__q6_k_unpack_avx2, ds__q6_k_dot_avx2)

/* x -> BF16 activations, as ds__f32_to_bf16 (round to nearest even, NaN quietened) */
DS__AVX2 static void ds__quantize_bf16_avx2(const float *x, uint16_t *y, int K) {
    const __m256i abs_mask = _mm256_set1_epi32(0x7fffffff), inf = _mm256_set1_epi32(0x7f800000);
    int i = 0;
    for (; i + 8 <= K; i += 8) {
        __m256i u = _mm256_loadu_si256((const __m256i *)(const void *)(x + i));
        __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, abs_mask), inf);
        __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
        __m256i r = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff))), 16);
        __m256i q = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
        r = _mm256_permute4x64_epi64(_mm256_packus_epi32(_mm256_blendv_epi8(r, q, nan), _mm256_setzero_si256()), 0xd8);
        _mm_storeu_si128((__m128i *)(void *)(y + i), _mm256_castsi256_si128(r));
    }
    for (; i < K; i++) y[i] = ds__f32_to_bf16(x[i]);
}

/* x -> Q8_K blocks, as ds__quantize_q8_k: the first value of largest magnitude maps to -127,
   cvtps rounds halves to even like the reference's ds__round_even */
DS__AVX2 static void ds__quantize_q8_k_avx2(const float *x, ds__block_q8_k *y, int K) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    int b, j;
    for (b = 0; b < K / DS__QK_K; b++, x += DS__QK_K) {
        __m256 amax = _mm256_setzero_ps(), is;
        float am, max = 0.0f;
        for (j = 0; j < DS__QK_K; j += 8) amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + j)));
        am = ds__hmax8_avx2(amax);
        memset(&y[b], 0, sizeof y[b]);
        if (am == 0.0f) continue;
        for (j = 0; j < DS__QK_K; j++)
            if (fabsf(x[j]) == am) {
                max = x[j];
                break;
            }
        is = _mm256_set1_ps(-127.0f / max);
        for (j = 0; j < DS__QK_K; j += 16) {
            __m256i q0 = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(is, _mm256_loadu_ps(x + j))), _mm256_set1_epi32(127));
            __m256i q1 = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(is, _mm256_loadu_ps(x + j + 8))), _mm256_set1_epi32(127));
            __m256i p = _mm256_permute4x64_epi64(_mm256_packs_epi32(q0, q1), 0xd8); /* 16 int16 in order */
            _mm_storeu_si128((__m128i *)(void *)(y[b].qs + j), _mm_packs_epi16(_mm256_castsi256_si128(p), _mm256_extracti128_si256(p, 1)));
            y[b].bsums[j / 16] = (int16_t)ds__hsum8i_avx2(_mm256_add_epi32(q0, q1));
        }
        y[b].d = 1.0f / (-127.0f / max);
    }
}

/* the activation quantizer of the AVX2 K-quant and BF16 kernels */
DS__AVX2 static void ds__quantize_act_avx2(ds_type at, const float *x, void *dst, int K) {
    if (at == DS_TYPE_BF16) ds__quantize_bf16_avx2(x, DS__CAST(uint16_t *, dst), K);
    else if (at == DS_TYPE_Q8_K) ds__quantize_q8_k_avx2(x, DS__CAST(ds__block_q8_k *, dst), K);
    else ds__quantize_row(at, x, dst, K);
}

/* ---- element-wise kernels ------------------------------------------------------------------ */
DS__AVX2 static float ds__dot_f32_avx2(const float *a, const float *b, int n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    float s;
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s = ds__hsum8_avx2(_mm256_add_ps(s0, s1));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

DS__AVX2 static void ds__axpy_f32_avx2(float *y, float a, const float *x, int n) {
    __m256 av = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(y + i), _mm256_mul_ps(av, _mm256_loadu_ps(x + i))));
    for (; i < n; i++) y[i] += a * x[i];
}

DS__AVX2 static void ds__rmsnorm_avx2(float *y, const float *x, const float *w, int n, float eps) {
    float scale = ds__rms_scale(x, n, eps);
    __m256 sc = _mm256_set1_ps(scale);
    int i;
    for (i = 0; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), sc), _mm256_loadu_ps(w + i)));
    for (; i < n; i++) y[i] = x[i] * scale * w[i];
}

/* e^x as ds__exp_ref, 8 lanes; lanes whose 2^n is not a normal float (results near or past
   the float range) take the scalar path */
DS__AVX2_INLINE __m256 ds__exp_avx2(__m256 x) {
    const __m256 r = _mm256_set1_ps(12582912.0f);
    __m256 z = _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269502f), r), n = _mm256_sub_ps(z, r);
    __m256 b = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.42860677e-06f), _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145752f), x));
    __m256 u = _mm256_mul_ps(b, b);
    __m256 j = _mm256_fmadd_ps(_mm256_fmadd_ps(_mm256_fmadd_ps(_mm256_set1_ps(0.00824739039f), b, _mm256_set1_ps(0.0418997668f)), u,
                                               _mm256_fmadd_ps(_mm256_set1_ps(0.166683957f), b, _mm256_set1_ps(0.499991268f))),
                               u, _mm256_fmadd_ps(_mm256_set1_ps(0.999999404f), b, _mm256_set1_ps(1.0f)));
    __m256 ok = _mm256_cmp_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), n), _mm256_set1_ps(126.0f), _CMP_LE_OQ);
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    __m256 res = _mm256_mul_ps(j, _mm256_castsi256_ps(e));
    if (_mm256_movemask_ps(ok) != 0xff) {
        float xs[8], rs[8];
        int l, m = _mm256_movemask_ps(ok);
        _mm256_storeu_ps(xs, x);
        _mm256_storeu_ps(rs, res);
        for (l = 0; l < 8; l++)
            if (!(m >> l & 1)) rs[l] = ds__exp_ref(xs[l]);
        res = _mm256_loadu_ps(rs);
    }
    return res;
}

DS__AVX2 static void ds__softmax_avx2(float *x, int n) {
    __m256 mx = _mm256_set1_ps(-INFINITY), mv;
    float max, inv;
    double sum = 0.0;
    int i = 0;
    for (; i + 8 <= n; i += 8) mx = _mm256_max_ps(mx, _mm256_loadu_ps(x + i));
    max = ds__hmax8_avx2(mx);
    for (; i < n; i++) max = DS__MAX(max, x[i]);
    mv = _mm256_set1_ps(max);
    for (i = 0; i + 16 <= n; i += 16) {
        __m256 e0 = ds__exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(x + i), mv)), e1 = ds__exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(x + i + 8), mv));
        _mm256_storeu_ps(x + i, e0);
        _mm256_storeu_ps(x + i + 8, e1);
        sum += (double)ds__hsum8_avx2(_mm256_add_ps(e0, e1)); /* = ds__tree16 */
    }
    if (i < n) {
        float e[16];
        int k;
        for (k = 0; k < 16; k++) e[k] = i + k < n ? (x[i + k] = ds__exp_ref(x[i + k] - max)) : 0.0f;
        sum += (double)ds__tree16(e);
    }
    inv = (float)(1.0 / sum);
    mv = _mm256_set1_ps(inv);
    for (i = 0; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), mv));
    for (; i < n; i++) x[i] *= inv;
}

DS__AVX2 static void ds__swiglu_avx2(float *y, const float *gate, const float *up, int n) {
    const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 g = _mm256_loadu_ps(gate + i);
        __m256 e = ds__exp_avx2(_mm256_sub_ps(zero, g));
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(one, e)), _mm256_loadu_ps(up + i)));
    }
    for (; i < n; i++) y[i] = gate[i] / (1.0f + ds__exp_ref(-gate[i])) * up[i];
}

DS__AVX2 static void ds__rope_apply_avx2(float *x, int n_heads, int head_dim, int count, int off, int neox, const float *cs, const float *sn) {
    int h, i;
    for (h = 0; h < n_heads; h++) {
        float *v = x + (size_t)h * head_dim;
        i = 0;
        if (neox) {
            for (; i + 8 <= count; i += 8) {
                __m256 a = _mm256_loadu_ps(v + i), b = _mm256_loadu_ps(v + i + off), c = _mm256_loadu_ps(cs + i), s = _mm256_loadu_ps(sn + i);
                _mm256_storeu_ps(v + i, _mm256_fmsub_ps(a, c, _mm256_mul_ps(b, s)));
                _mm256_storeu_ps(v + i + off, _mm256_fmadd_ps(a, s, _mm256_mul_ps(b, c)));
            }
        } else {
            for (; i + 4 <= count; i += 4) { /* 4 pairs (a, b) interleaved in 8 floats */
                __m256 xv = _mm256_loadu_ps(v + 2 * i);
                __m256 c = _mm256_castps128_ps256(_mm_loadu_ps(cs + i)), s = _mm256_castps128_ps256(_mm_loadu_ps(sn + i));
                __m256i dup = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3);
                __m256 cc = _mm256_permutevar8x32_ps(c, dup), ss = _mm256_permutevar8x32_ps(s, dup);
                __m256 sw = _mm256_permute_ps(xv, 0xb1);                     /* (b, a) */
                __m256 ra = _mm256_fmsub_ps(xv, cc, _mm256_mul_ps(sw, ss));  /* a c - b s, a c fused */
                __m256 rb = _mm256_fmadd_ps(sw, ss, _mm256_mul_ps(xv, cc));  /* a s + b c, a s fused */
                _mm256_storeu_ps(v + 2 * i, _mm256_blend_ps(ra, rb, 0xaa));
            }
        }
        for (; i < count; i++) {
            int a = neox ? i : 2 * i, b = neox ? i + off : 2 * i + 1;
            float x0 = v[a], x1 = v[b];
            v[a] = fmaf(x0, cs[i], -(x1 * sn[i]));
            v[b] = fmaf(x0, sn[i], x1 * cs[i]);
        }
    }
}
#endif /* DS__X86_SIMD */

#if defined(DS__NEON)
/* ===================================== arm64: NEON ====================================== */
/* roundf per lane: FCVTAS rounds halves away from zero, like the reference */
static void ds__quantize_qx_neon(ds_type at, const float *x, void *dst, int K) {
    uint8_t *row = DS__CAST(uint8_t *, dst);
    int b, j;
    (void)at;
    for (b = 0; b < K / DS__QK; b++, x += DS__QK) {
        float32x4_t v[8], amax = vdupq_n_f32(0.0f);
        int32x4_t q[8], isum = vdupq_n_s32(0);
        int16x8_t h[4];
        float d, id;
        for (j = 0; j < 8; j++) {
            v[j] = vld1q_f32(x + 4 * j);
            amax = vmaxq_f32(amax, vabsq_f32(v[j]));
        }
        d = vmaxvq_f32(amax) / 127.0f;
        id = d != 0.0f ? 127.0f / vmaxvq_f32(amax) : 0.0f;
        for (j = 0; j < 8; j++) {
            q[j] = vcvtnq_s32_f32(vmulq_n_f32(v[j], id));
            isum = vaddq_s32(isum, q[j]);
        }
        for (j = 0; j < 4; j++) h[j] = vcombine_s16(vmovn_s32(q[2 * j]), vmovn_s32(q[2 * j + 1]));
        vst1q_s8((int8_t *)row + b * DS__QK, vcombine_s8(vmovn_s16(h[0]), vmovn_s16(h[1])));
        vst1q_s8((int8_t *)row + b * DS__QK + 16, vcombine_s8(vmovn_s16(h[2]), vmovn_s16(h[3])));
        ds__qx_block_scales(row, K, b, d, vaddvq_s32(isum));
    }
}

/* sum of 32 int8 products into 4 int32 lanes: SDOT where the compiler targets it, otherwise
   widening multiplies (two products per int16 lane cannot overflow) */
static inline int32x4_t ds__dot32_neon(int32x4_t acc, int8x16_t w0, int8x16_t x0, int8x16_t w1, int8x16_t x1) {
#if defined(__ARM_FEATURE_DOTPROD)
    return vdotq_s32(vdotq_s32(acc, w0, x0), w1, x1);
#else
    int16x8_t p0 = vmlal_s8(vmull_s8(vget_low_s8(w0), vget_low_s8(x0)), vget_high_s8(w0), vget_high_s8(x0));
    int16x8_t p1 = vmlal_s8(vmull_s8(vget_low_s8(w1), vget_low_s8(x1)), vget_high_s8(w1), vget_high_s8(x1));
    return vpadalq_s16(vpadalq_s16(acc, p0), p1);
#endif
}
/* lane l of 16 int8 pairs: the sum of terms 4l..4l+3 (the integer-dot lanes of ds__dot_block_lanes) */
static inline int32x4_t ds__dot16_lanes_neon(int8x16_t w, int8x16_t x) {
#if defined(__ARM_FEATURE_DOTPROD)
    return vdotq_s32(vdupq_n_s32(0), w, x);
#else
    int32x4_t lo = vpaddlq_s16(vmull_s8(vget_low_s8(w), vget_low_s8(x))), hi = vpaddlq_s16(vmull_s8(vget_high_s8(w), vget_high_s8(x)));
    return vpaddq_s32(lo, hi);
#endif
}
/* ds__hsum8_tree of lanes (a0..a3, a4..a7) */
static inline float ds__hsum8_neon(float32x4_t a, float32x4_t b) {
    float32x4_t t = vaddq_f32(a, b);
    t = vaddq_f32(t, vextq_f32(t, t, 2));
    return vgetq_lane_f32(t, 0) + vgetq_lane_f32(t, 1);
}

/* the x86 tile's shape and float order (see there): up to 4 rows x CT tokens, weights as signed
   int8 (Q4_0's offset subtracted), each row's 8 lanes in two vectors */
static inline __attribute__((always_inline)) void ds__qtile_neon(const ds__mm *m, const int kind, int n, int nr, int t, int ct, const int CT) {
    const int nb = m->K / DS__QK;
    const uint8x16_t lo4 = vdupq_n_u8(0x0f);
    const uint8_t *wr[4];
    ds__qx xr[4];
    float32x4_t acc[4][4], acc1[4][4], macc[4];
    int r, c, b;
    for (r = 0; r < 4; r++) wr[r] = m->w + (size_t)(n + DS__MIN(r, nr - 1)) * m->w_row;
    DS__UNROLL4 for (c = 0; c < CT; c++) {
        xr[c] = ds__qx_view(m->xa + (size_t)(t + DS__MIN(c, ct - 1)) * m->xa_row, m->K);
        macc[c] = vdupq_n_f32(0.0f);
        DS__UNROLL4 for (r = 0; r < 4; r++) acc[r][c] = acc1[r][c] = vdupq_n_f32(0.0f);
    }
    for (b = 0; b < nb; b++) {
        int8x16_t w0[4], w1[4];
        float dw[4], mw[4] = {0, 0, 0, 0};
        DS__UNROLL4 for (r = 0; r < 4; r++) {
            if (CT == 1) DS__PREFETCH(wr[r] + (size_t)b * DS__QK_BYTES(kind) + 4 * m->w_row);
            if (kind == DS__QK_Q8_0) {
                const ds__block_q8_0 *bl = DS__CAST(const ds__block_q8_0 *, (const void *)wr[r]) + b;
                w0[r] = vld1q_s8(bl->qs);
                w1[r] = vld1q_s8(bl->qs + 16);
                dw[r] = ds__f16_to_f32(bl->d);
            } else if (kind == DS__QK_Q4_0) {
                const ds__block_q4_0 *bl = DS__CAST(const ds__block_q4_0 *, (const void *)wr[r]) + b;
                uint8x16_t v = vld1q_u8(bl->qs);
                w0[r] = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(v, lo4)), vdupq_n_s8(8));
                w1[r] = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(v, 4)), vdupq_n_s8(8));
                dw[r] = ds__f16_to_f32(bl->d);
            } else {
                const ds__block_q4_1 *bl = DS__CAST(const ds__block_q4_1 *, (const void *)wr[r]) + b;
                uint8x16_t v = vld1q_u8(bl->qs);
                w0[r] = vreinterpretq_s8_u8(vandq_u8(v, lo4));
                w1[r] = vreinterpretq_s8_u8(vshrq_n_u8(v, 4));
                dw[r] = ds__f16_to_f32(bl->d);
                mw[r] = ds__f16_to_f32(bl->m);
            }
        }
        DS__UNROLL4 for (c = 0; c < CT; c++) {
            const int8x16_t x0 = vld1q_s8(xr[c].q + b * DS__QK), x1 = vld1q_s8(xr[c].q + b * DS__QK + 16);
            const float dx = xr[c].d[b];
            DS__UNROLL4 for (r = 0; r < 4; r++) {
                acc[r][c] = vfmaq_n_f32(acc[r][c], vcvtq_f32_s32(ds__dot16_lanes_neon(w0[r], x0)), dw[r] * dx);
                acc1[r][c] = vfmaq_n_f32(acc1[r][c], vcvtq_f32_s32(ds__dot16_lanes_neon(w1[r], x1)), dw[r] * dx);
            }
            if (kind == DS__QK_Q4_1) macc[c] = vfmaq_n_f32(macc[c], vld1q_f32(mw), xr[c].s[b]);
        }
    }
    for (c = 0; c < ct; c++) {
        float mm[4];
        vst1q_f32(mm, macc[c]);
        for (r = 0; r < nr; r++) m->y[(size_t)(t + c) * m->N + n + r] = ds__hsum8_neon(acc[r][c], acc1[r][c]) + mm[r];
    }
}
static inline __attribute__((always_inline)) void ds__qgemm_neon(const ds__mm *m, const int kind, int t0, int t1, int n0, int n1) {
    int n, t;
    for (n = n0; n < n1; n += 4) {
        for (t = t0; t + 4 <= t1; t += 4) ds__qtile_neon(m, kind, n, DS__MIN(4, n1 - n), t, 4, 4);
        for (; t < t1; t++) ds__qtile_neon(m, kind, n, DS__MIN(4, n1 - n), t, 1, 1);
    }
}
DS__HOT static void ds__gemm_q4_0_neon(const ds__mm *m, int t0, int t1, int n0, int n1) { ds__qgemm_neon(m, DS__QK_Q4_0, t0, t1, n0, n1); }
DS__HOT static void ds__gemm_q4_1_neon(const ds__mm *m, int t0, int t1, int n0, int n1) { ds__qgemm_neon(m, DS__QK_Q4_1, t0, t1, n0, n1); }
DS__HOT static void ds__gemm_q8_0_neon(const ds__mm *m, int t0, int t1, int n0, int n1) { ds__qgemm_neon(m, DS__QK_Q8_0, t0, t1, n0, n1); }

static float ds__dot_f32_neon(const float *a, const float *b, int n) {
    float32x4_t s0 = vdupq_n_f32(0.0f), s1 = vdupq_n_f32(0.0f);
    float s;
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
        s1 = vfmaq_f32(s1, vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
    }
    s = vaddvq_f32(vaddq_f32(s0, s1));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

static void ds__axpy_f32_neon(float *y, float a, const float *x, int n) {
    int i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vaddq_f32(vld1q_f32(y + i), vmulq_n_f32(vld1q_f32(x + i), a)));
    for (; i < n; i++) y[i] += a * x[i];
}

static void ds__rmsnorm_neon(float *y, const float *x, const float *w, int n, float eps) {
    float scale = ds__rms_scale(x, n, eps);
    int i;
    for (i = 0; i + 4 <= n; i += 4) vst1q_f32(y + i, vmulq_f32(vmulq_n_f32(vld1q_f32(x + i), scale), vld1q_f32(w + i)));
    for (; i < n; i++) y[i] = x[i] * scale * w[i];
}

/* e^x as ds__exp_ref, 4 lanes (lanes past the normal range of 2^n take the scalar path) */
static inline float32x4_t ds__exp_neon(float32x4_t x) {
    const float32x4_t r = vdupq_n_f32(12582912.0f);
    float32x4_t z = vfmaq_f32(r, x, vdupq_n_f32(1.44269502f)), n = vsubq_f32(z, r);
    float32x4_t b = vfmsq_f32(vfmsq_f32(x, n, vdupq_n_f32(0.693145752f)), n, vdupq_n_f32(1.42860677e-06f));
    float32x4_t u = vmulq_f32(b, b);
    float32x4_t j = vfmaq_f32(vfmaq_f32(vdupq_n_f32(1.0f), vdupq_n_f32(0.999999404f), b),
                              vfmaq_f32(vfmaq_f32(vdupq_n_f32(0.499991268f), vdupq_n_f32(0.166683957f), b),
                                        vfmaq_f32(vdupq_n_f32(0.0418997668f), vdupq_n_f32(0.00824739039f), b), u),
                              u);
    uint32x4_t ok = vcleq_f32(vabsq_f32(n), vdupq_n_f32(126.0f));
    float32x4_t res = vmulq_f32(j, vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23)));
    if (vminvq_u32(ok) == 0) {
        float xs[4], rs[4];
        uint32_t oks[4];
        int l;
        vst1q_f32(xs, x);
        vst1q_f32(rs, res);
        vst1q_u32(oks, ok);
        for (l = 0; l < 4; l++)
            if (!oks[l]) rs[l] = ds__exp_ref(xs[l]);
        res = vld1q_f32(rs);
    }
    return res;
}

/* ds__softmax_ref's sums: chunks of 16 by ds__tree16 (vectors e0..3, e4..7, e8..11, e12..15) */
static void ds__softmax_neon(float *x, int n) {
    float32x4_t mx = vdupq_n_f32(-INFINITY), mv;
    float max, inv;
    double sum = 0.0;
    int i = 0, k;
    for (; i + 4 <= n; i += 4) mx = vmaxq_f32(mx, vld1q_f32(x + i));
    max = vmaxvq_f32(mx);
    for (; i < n; i++) max = DS__MAX(max, x[i]);
    mv = vdupq_n_f32(max);
    for (i = 0; i + 16 <= n; i += 16) {
        float32x4_t e[4];
        for (k = 0; k < 4; k++) {
            e[k] = ds__exp_neon(vsubq_f32(vld1q_f32(x + i + 4 * k), mv));
            vst1q_f32(x + i + 4 * k, e[k]);
        }
        sum += (double)ds__hsum8_neon(vaddq_f32(e[0], e[2]), vaddq_f32(e[1], e[3]));
    }
    if (i < n) {
        float e[16];
        for (k = 0; k < 16; k++) e[k] = i + k < n ? (x[i + k] = ds__exp_ref(x[i + k] - max)) : 0.0f;
        sum += (double)ds__tree16(e);
    }
    inv = (float)(1.0 / sum);
    for (i = 0; i + 4 <= n; i += 4) vst1q_f32(x + i, vmulq_n_f32(vld1q_f32(x + i), inv));
    for (; i < n; i++) x[i] *= inv;
}

static void ds__swiglu_neon(float *y, const float *gate, const float *up, int n) {
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t g = vld1q_f32(gate + i), e = ds__exp_neon(vsubq_f32(vdupq_n_f32(0.0f), g));
        vst1q_f32(y + i, vmulq_f32(vdivq_f32(g, vaddq_f32(vdupq_n_f32(1.0f), e)), vld1q_f32(up + i)));
    }
    for (; i < n; i++) y[i] = gate[i] / (1.0f + ds__exp_ref(-gate[i])) * up[i];
}

static void ds__rope_apply_neon(float *x, int n_heads, int head_dim, int count, int off, int neox, const float *cs, const float *sn) {
    int h, i;
    for (h = 0; h < n_heads; h++) {
        float *v = x + (size_t)h * head_dim;
        i = 0;
        for (; i + 4 <= count; i += 4) {
            float32x4_t c = vld1q_f32(cs + i), s = vld1q_f32(sn + i), a, b;
            if (neox) {
                a = vld1q_f32(v + i);
                b = vld1q_f32(v + i + off);
                vst1q_f32(v + i, vfmaq_f32(vnegq_f32(vmulq_f32(b, s)), a, c));
                vst1q_f32(v + i + off, vfmaq_f32(vmulq_f32(b, c), a, s));
            } else { /* de-interleave the pairs, rotate, interleave back */
                float32x4x2_t p = vld2q_f32(v + 2 * i);
                a = p.val[0];
                b = p.val[1];
                p.val[0] = vfmaq_f32(vnegq_f32(vmulq_f32(b, s)), a, c); /* a c fused, as ds__rope_apply_ref */
                p.val[1] = vfmaq_f32(vmulq_f32(b, c), a, s);
                vst2q_f32(v + 2 * i, p);
            }
        }
        for (; i < count; i++) {
            int a = neox ? i : 2 * i, b = neox ? i + off : 2 * i + 1;
            float x0 = v[a], x1 = v[b];
            v[a] = fmaf(x0, cs[i], -(x1 * sn[i]));
            v[b] = fmaf(x0, sn[i], x1 * cs[i]);
        }
    }
}
/* float-weight tile as on x86: 4 rows x CT tokens, 4 columns per step, scalar K % 4 tail */
static inline float32x4_t ds__load4_neon(const uint8_t *p, int i, const int kind) {
    if (kind == DS__FK_F32) return vld1q_f32((const float *)(const void *)p + i);
    if (kind == DS__FK_F16) return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16((const uint16_t *)(const void *)p + i)));
    return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16((const uint16_t *)(const void *)p + i), 16));
}
static inline __attribute__((always_inline)) void ds__ftile_neon(const ds__mm *m, const int kind, int n, int nr, int t, int ct, const int CT) {
    const int xkind = kind == DS__FK_BF16 ? DS__FK_BF16 : DS__FK_F32, K = m->K;
    const uint8_t *wr[4], *xr[2];
    float32x4_t acc[4][2];
    int r, c, k;
    DS__UNROLL4 for (r = 0; r < 4; r++) wr[r] = m->w + (size_t)(n + DS__MIN(r, nr - 1)) * m->w_row;
    DS__UNROLL4 for (c = 0; c < CT; c++) {
        xr[c] = m->xa + (size_t)(t + DS__MIN(c, ct - 1)) * m->xa_row;
        DS__UNROLL4 for (r = 0; r < 4; r++) acc[r][c] = vdupq_n_f32(0.0f);
    }
    for (k = 0; k + 4 <= K; k += 4) {
        float32x4_t w[4];
        DS__UNROLL4 for (r = 0; r < 4; r++) w[r] = ds__load4_neon(wr[r], k, kind);
        DS__UNROLL4 for (c = 0; c < CT; c++) {
            float32x4_t xv = ds__load4_neon(xr[c], k, xkind);
            DS__UNROLL4 for (r = 0; r < 4; r++) acc[r][c] = vfmaq_f32(acc[r][c], w[r], xv);
        }
    }
    for (c = 0; c < ct; c++) {
        for (r = 0; r < nr; r++) {
            float s = vaddvq_f32(acc[r][c]);
            int i;
            for (i = k; i < K; i++) s += ds__load1(wr[r], i, kind) * ds__load1(xr[c], i, xkind);
            m->y[(size_t)(t + c) * m->N + n + r] = s;
        }
    }
}
static inline __attribute__((always_inline)) void ds__fgemm_neon(const ds__mm *m, const int kind, int t0, int t1, int n0, int n1) {
    int n, t;
    for (n = n0; n < n1; n += 4) {
        for (t = t0; t + 2 <= t1; t += 2) ds__ftile_neon(m, kind, n, DS__MIN(4, n1 - n), t, 2, 2);
        for (; t < t1; t++) ds__ftile_neon(m, kind, n, DS__MIN(4, n1 - n), t, 1, 1);
    }
}
static void ds__gemm_f32_neon(const ds__mm *m, int t0, int t1, int n0, int n1) { ds__fgemm_neon(m, DS__FK_F32, t0, t1, n0, n1); }
static void ds__gemm_f16_neon(const ds__mm *m, int t0, int t1, int n0, int n1) { ds__fgemm_neon(m, DS__FK_F16, t0, t1, n0, n1); }
static void ds__gemm_bf16_neon(const ds__mm *m, int t0, int t1, int n0, int n1) { ds__fgemm_neon(m, DS__FK_BF16, t0, t1, n0, n1); }

/* K-quants as on x86: one row against up to 4 tokens, integer sums per super-block (weights as
   signed int8: Q4_K's nibbles, Q6_K's q - 32), so each super-block's float terms are exact */
static int ds__dot16_neon(int8x16_t w, const int8_t *x) {
    return vaddvq_s32(ds__dot32_neon(vdupq_n_s32(0), w, vld1q_s8(x), vdupq_n_s8(0), vdupq_n_s8(0)));
}
typedef struct ds__kq_neon {
    int8x16_t q[16];
    int sc[8], mn[8];
    float d, dmin;
} ds__kq_neon;
/* Q4_K and Q5_K (qh: bit 4 of sub-block j's levels is bit j of the qh bytes; NULL for Q4_K) */
static inline __attribute__((always_inline)) void ds__k4_unpack_neon(ds__kq_neon *st, const ds__block_q4_k *w, const uint8_t *qs, const uint8_t *qh) {
    const uint8x16_t lo4 = vdupq_n_u8(0x0f), one = vdupq_n_u8(1);
    int j;
    st->d = ds__f16_to_f32(w->d);
    st->dmin = ds__f16_to_f32(w->dmin);
    for (j = 0; j < 8; j++) ds__q4_k_scale_min(w->scales, j, &st->sc[j], &st->mn[j]);
    for (j = 0; j < 8; j++) { /* sub-block j: 32 values, nibbles of qs[32 (j / 2)...] */
        uint8x16_t a = vld1q_u8(qs + 32 * (j / 2)), b = vld1q_u8(qs + 32 * (j / 2) + 16);
        a = j & 1 ? vshrq_n_u8(a, 4) : vandq_u8(a, lo4);
        b = j & 1 ? vshrq_n_u8(b, 4) : vandq_u8(b, lo4);
        if (qh) {
            const int8x16_t sh = vdupq_n_s8((int8_t)-j);
            a = vorrq_u8(a, vshlq_n_u8(vandq_u8(vshlq_u8(vld1q_u8(qh), sh), one), 4));
            b = vorrq_u8(b, vshlq_n_u8(vandq_u8(vshlq_u8(vld1q_u8(qh + 16), sh), one), 4));
        }
        st->q[2 * j] = vreinterpretq_s8_u8(a);
        st->q[2 * j + 1] = vreinterpretq_s8_u8(b);
    }
}
static inline __attribute__((always_inline)) void ds__q4_k_unpack_neon(ds__kq_neon *st, const ds__block_q4_k *w) { ds__k4_unpack_neon(st, w, w->qs, NULL); }
static inline __attribute__((always_inline)) void ds__q5_k_unpack_neon(ds__kq_neon *st, const ds__block_q5_k *w) {
    ds__k4_unpack_neon(st, (const ds__block_q4_k *)(const void *)w, w->qs, w->qh);
}
static inline __attribute__((always_inline)) float ds__k4_dot_neon(const ds__kq_neon *st, const void *w, const ds__block_q8_k *x) {
    int sq = 0, sm = 0, j;
    (void)w;
    for (j = 0; j < 8; j++) {
        int32x4_t p = ds__dot32_neon(vdupq_n_s32(0), st->q[2 * j], vld1q_s8(x->qs + 32 * j), st->q[2 * j + 1], vld1q_s8(x->qs + 32 * j + 16));
        sq += st->sc[j] * vaddvq_s32(p);
        sm += st->mn[j] * (x->bsums[2 * j] + x->bsums[2 * j + 1]);
    }
    return x->d * (st->d * (float)sq - st->dmin * (float)sm);
}
DS__DEFINE_KQ_GEMM(ds__gemm_q4_k_neon, , ds__block_q4_k, ds__kq_neon, ds__q4_k_unpack_neon, ds__k4_dot_neon)
DS__DEFINE_KQ_GEMM(ds__gemm_q5_k_neon, , ds__block_q5_k, ds__kq_neon, ds__q5_k_unpack_neon, ds__k4_dot_neon)

static inline __attribute__((always_inline)) void ds__q6_k_unpack_neon(ds__kq_neon *st, const ds__block_q6_k *w) {
    int g;
    st->d = ds__f16_to_f32(w->d);
    for (g = 0; g < 16; g++) { /* 16 values per scale: half g/8, k = (g/2)%4, l from 16 (g%2) */
        const int h = g / 8, k = (g / 2) % 4, l = 16 * (g % 2);
        uint8x16_t lo = vld1q_u8(w->ql + 64 * h + l + 32 * (k & 1)), hb = vld1q_u8(w->qh + 32 * h + l);
        lo = k & 2 ? vshrq_n_u8(lo, 4) : vandq_u8(lo, vdupq_n_u8(0x0f));
        hb = vandq_u8(vshlq_u8(hb, vdupq_n_s8((int8_t)(-2 * k))), vdupq_n_u8(3));
        st->q[g] = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(lo, vshlq_n_u8(hb, 4))), vdupq_n_s8(32));
    }
}
static inline __attribute__((always_inline)) float ds__q6_k_dot_neon(const ds__kq_neon *st, const ds__block_q6_k *w, const ds__block_q8_k *x) {
    int sq = 0, g;
    for (g = 0; g < 16; g++) sq += w->scales[g] * ds__dot16_neon(st->q[g], x->qs + 16 * g);
    return st->d * x->d * (float)sq;
}
DS__DEFINE_KQ_GEMM(ds__gemm_q6_k_neon, , ds__block_q6_k, ds__kq_neon, ds__q6_k_unpack_neon, ds__q6_k_dot_neon)
#endif /* DS__NEON */

#if !defined(DS_NO_TRAIN)
/* ---- training GEMM register tiles ------------------------------------------------------------
   C tile (MR, NR) (+)= Ap^T Bp over a K slice of kc, from strips packed by the GEMM driver
   (>>backend): f32, or bf16 pairs for vdpbf16ps with f32 accumulation. */
#define DS__GEMM_MR 8
#define DS__GEMM_NR 32
#define DS__GEMM_MC 128
#define DS__GEMM_NC 1024
#define DS__GEMM_KC 256

/* f32 strip [k][w] -> bf16 pairs [k/2][w][2], in place (kc rounded up with a zero row) */
static void ds__pack_to_bf16_ref(float *strip, int kc, int w) {
    uint16_t *o = (uint16_t *)(void *)strip;
    int k, c;
    for (k = 0; k < kc; k += 2) {
        const float *r0 = strip + (size_t)k * w, *r1 = r0 + w;
        uint16_t pair[2 * DS__GEMM_NR];
        for (c = 0; c < w; c++) {
            pair[2 * c] = ds__f32_to_bf16(r0[c]);
            pair[2 * c + 1] = k + 1 < kc ? ds__f32_to_bf16(r1[c]) : 0;
        }
        memcpy(o + (size_t)k * w, pair, sizeof(uint16_t) * 2 * (size_t)w);
    }
}

/* C tile (MR, NR) (+)= Ap^T Bp over kc: the scalar reference micro-kernel */
static void ds__gemm_micro_ref(const float *ap, const float *bp, int kc, float *c, int ldc, int add) {
    float acc[DS__GEMM_MR * DS__GEMM_NR];
    int k, r, j;
    memset(acc, 0, sizeof acc);
    for (k = 0; k < kc; k++)
        for (r = 0; r < DS__GEMM_MR; r++) {
            float a = ap[k * DS__GEMM_MR + r];
            for (j = 0; j < DS__GEMM_NR; j++) acc[r * DS__GEMM_NR + j] += a * bp[k * DS__GEMM_NR + j];
        }
    for (r = 0; r < DS__GEMM_MR; r++)
        for (j = 0; j < DS__GEMM_NR; j++) c[(size_t)r * ldc + j] = (add ? c[(size_t)r * ldc + j] : 0.0f) + acc[r * DS__GEMM_NR + j];
}
static void ds__gemm_micro_bf16_ref(const float *apf, const float *bpf, int kc, float *c, int ldc, int add) {
    const uint16_t *ap = (const uint16_t *)(const void *)apf, *bp = (const uint16_t *)(const void *)bpf;
    float acc[DS__GEMM_MR * DS__GEMM_NR];
    int p, r, j, np = (kc + 1) / 2;
    memset(acc, 0, sizeof acc);
    for (p = 0; p < np; p++)
        for (r = 0; r < DS__GEMM_MR; r++) {
            float a0 = ds__bf16_to_f32(ap[(p * DS__GEMM_MR + r) * 2]), a1 = ds__bf16_to_f32(ap[(p * DS__GEMM_MR + r) * 2 + 1]);
            for (j = 0; j < DS__GEMM_NR; j++) {
                const uint16_t *b = bp + (p * DS__GEMM_NR + j) * 2;
                acc[r * DS__GEMM_NR + j] += a0 * ds__bf16_to_f32(b[0]) + a1 * ds__bf16_to_f32(b[1]);
            }
        }
    for (r = 0; r < DS__GEMM_MR; r++)
        for (j = 0; j < DS__GEMM_NR; j++) c[(size_t)r * ldc + j] = (add ? c[(size_t)r * ldc + j] : 0.0f) + acc[r * DS__GEMM_NR + j];
}

#if defined(DS__X86_SIMD)

/* row r of the tile: x0, x1 stored to (or added into) c + r * ldc */
#define DS__ZMM_ROW_STORE(c, ldc, add, r, x0, x1)                                \
    do {                                                                         \
        float *row_ = (c) + (size_t)(r) * (ldc);                                 \
        if (add) {                                                               \
            x0 = _mm512_add_ps(x0, _mm512_loadu_ps(row_));                       \
            x1 = _mm512_add_ps(x1, _mm512_loadu_ps(row_ + 16));                  \
        }                                                                        \
        _mm512_storeu_ps(row_, x0);                                              \
        _mm512_storeu_ps(row_ + 16, x1);                                         \
    } while (0)
#define DS__ZMM_TILE_STORE(c, ldc, add)                                                                      \
    do {                                                                                                     \
        DS__ZMM_ROW_STORE(c, ldc, add, 0, c00, c01); DS__ZMM_ROW_STORE(c, ldc, add, 1, c10, c11);           \
        DS__ZMM_ROW_STORE(c, ldc, add, 2, c20, c21); DS__ZMM_ROW_STORE(c, ldc, add, 3, c30, c31);           \
        DS__ZMM_ROW_STORE(c, ldc, add, 4, c40, c41); DS__ZMM_ROW_STORE(c, ldc, add, 5, c50, c51);           \
        DS__ZMM_ROW_STORE(c, ldc, add, 6, c60, c61); DS__ZMM_ROW_STORE(c, ldc, add, 7, c70, c71);           \
    } while (0)

/* 8 rows x 32 columns in 16 zmm accumulators; one broadcast per row and k */
DS__AVX512 static void ds__gemm_micro_avx512(const float *ap, const float *bp, int kc, float *c, int ldc, int add) {
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
    __m512 c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00, c61 = c00, c70 = c00, c71 = c00;
    int k;
    for (k = 0; k < kc; k++) {
        __m512 b0 = _mm512_loadu_ps(bp), b1 = _mm512_loadu_ps(bp + 16), a;
#define DS__ROW(r, x0, x1)                 \
    a = _mm512_set1_ps(ap[r]);             \
    x0 = _mm512_fmadd_ps(a, b0, x0);       \
    x1 = _mm512_fmadd_ps(a, b1, x1);
        DS__ROW(0, c00, c01) DS__ROW(1, c10, c11) DS__ROW(2, c20, c21) DS__ROW(3, c30, c31)
        DS__ROW(4, c40, c41) DS__ROW(5, c50, c51) DS__ROW(6, c60, c61) DS__ROW(7, c70, c71)
#undef DS__ROW
        ap += DS__GEMM_MR;
        bp += DS__GEMM_NR;
    }
    DS__ZMM_TILE_STORE(c, ldc, add);
}

/* the same tile with vdpbf16ps: each instruction adds two K steps */
DS__AVX512BF16 static void ds__gemm_micro_avx512bf16(const float *apf, const float *bpf, int kc, float *c, int ldc, int add) {
    const uint16_t *ap = (const uint16_t *)(const void *)apf, *bp = (const uint16_t *)(const void *)bpf;
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
    __m512 c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00, c61 = c00, c70 = c00, c71 = c00;
    int p, np = (kc + 1) / 2;
    for (p = 0; p < np; p++) {
        __m512bh b0 = (__m512bh)_mm512_loadu_si512((const void *)bp), b1 = (__m512bh)_mm512_loadu_si512((const void *)(bp + 32));
        __m512bh a;
#define DS__ROW(r, x0, x1)                                                   \
    a = (__m512bh)_mm512_castps_si512(_mm512_set1_ps(((const float *)(const void *)ap)[r])); \
    x0 = _mm512_dpbf16_ps(x0, a, b0);                    \
    x1 = _mm512_dpbf16_ps(x1, a, b1);
        DS__ROW(0, c00, c01) DS__ROW(1, c10, c11) DS__ROW(2, c20, c21) DS__ROW(3, c30, c31)
        DS__ROW(4, c40, c41) DS__ROW(5, c50, c51) DS__ROW(6, c60, c61) DS__ROW(7, c70, c71)
#undef DS__ROW
        ap += 2 * DS__GEMM_MR;
        bp += 2 * DS__GEMM_NR;
    }
    DS__ZMM_TILE_STORE(c, ldc, add);
}

/* AVX2: the 8 x 32 tile as four 4 x 16 quarter tiles (8 ymm accumulators each) */
DS__AVX2 static void ds__gemm_micro_avx2(const float *ap, const float *bp, int kc, float *c, int ldc, int add) {
    int q;
    for (q = 0; q < 4; q++) {
        int r0 = (q >> 1) * 4, c0 = (q & 1) * 16, k, r;
        __m256 x[4][2];
        const float *a = ap + r0, *b = bp + c0;
        for (r = 0; r < 4; r++) x[r][0] = x[r][1] = _mm256_setzero_ps();
        for (k = 0; k < kc; k++) {
            __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
            for (r = 0; r < 4; r++) {
                __m256 av = _mm256_broadcast_ss(a + r);
                x[r][0] = _mm256_fmadd_ps(av, b0, x[r][0]);
                x[r][1] = _mm256_fmadd_ps(av, b1, x[r][1]);
            }
            a += DS__GEMM_MR;
            b += DS__GEMM_NR;
        }
        for (r = 0; r < 4; r++) {
            float *row = c + (size_t)(r0 + r) * ldc + c0;
            if (add) {
                x[r][0] = _mm256_add_ps(x[r][0], _mm256_loadu_ps(row));
                x[r][1] = _mm256_add_ps(x[r][1], _mm256_loadu_ps(row + 8));
            }
            _mm256_storeu_ps(row, x[r][0]);
            _mm256_storeu_ps(row + 8, x[r][1]);
        }
    }
}

/* out[k][16 * half + c] = B row (j0 + c), k in [0, kc16): 16 x 16 blocks transposed in registers */
DS__AVX512 static void ds__pack_bt_avx512(float *out, const float *b, int ldb, int kc16) {
    int half, k0, i;
    for (half = 0; half < 2; half++)
        for (k0 = 0; k0 < kc16; k0 += 16) {
            __m512 r[16], t[16], u[16];
            for (i = 0; i < 16; i++) r[i] = _mm512_loadu_ps(b + (size_t)(16 * half + i) * ldb + k0);
            for (i = 0; i < 16; i += 2) { /* (r0[0] r1[0] r0[1] r1[1]) per 128-bit lane */
                t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
                t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
            }
            for (i = 0; i < 16; i += 4) { /* u[i + j]: rows i..i+3 at column 4 L + j of lane L */
                u[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
                u[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
                u[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
                u[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
            }
            for (i = 0; i < 4; i++) { /* gather lane L of the four row groups into output row 4 L + i */
                __m512 v0 = _mm512_maskz_shuffle_f32x4((__mmask16)0xffff, u[i], u[4 + i], 0x44), w0 = _mm512_maskz_shuffle_f32x4((__mmask16)0xffff, u[i], u[4 + i], 0xee);
                __m512 v1 = _mm512_maskz_shuffle_f32x4((__mmask16)0xffff, u[8 + i], u[12 + i], 0x44), w1 = _mm512_maskz_shuffle_f32x4((__mmask16)0xffff, u[8 + i], u[12 + i], 0xee);
                float *o = out + (size_t)(k0 + i) * DS__GEMM_NR + 16 * half;
                _mm512_storeu_ps(o, _mm512_maskz_shuffle_f32x4((__mmask16)0xffff, v0, v1, 0x88));
                _mm512_storeu_ps(o + 4 * DS__GEMM_NR, _mm512_maskz_shuffle_f32x4((__mmask16)0xffff, v0, v1, 0xdd));
                _mm512_storeu_ps(o + 8 * DS__GEMM_NR, _mm512_maskz_shuffle_f32x4((__mmask16)0xffff, w0, w1, 0x88));
                _mm512_storeu_ps(o + 12 * DS__GEMM_NR, _mm512_maskz_shuffle_f32x4((__mmask16)0xffff, w0, w1, 0xdd));
            }
        }
}

/* f32 strip [k][w] -> bf16 pairs with vcvtne2ps2bf16 (both round to nearest-even) */
DS__AVX512BF16 static void ds__pack_to_bf16_avx512(float *strip, int kc, int w) {
    const __m512i lo = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const __m512i hi = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
    uint16_t *o = (uint16_t *)(void *)strip;
    int k, c;
    if (w == 8) { /* rows k and k + 1 are one register: interleave and convert */
        const __m512i il = _mm512_set_epi32(15, 7, 14, 6, 13, 5, 12, 4, 11, 3, 10, 2, 9, 1, 8, 0);
        for (k = 0; k < kc; k += 2) {
            __m512 x = k + 1 < kc ? _mm512_loadu_ps(strip + (size_t)k * 8) : _mm512_maskz_loadu_ps(0xff, strip + (size_t)k * 8);
            __m256bh y = _mm512_cvtneps_pbh(_mm512_maskz_permutexvar_ps((__mmask16)0xffff, il, x));
            _mm256_storeu_si256((__m256i *)(void *)(o + (size_t)k * 8), (__m256i)y);
        }
        return;
    }
    for (k = 0; k < kc; k += 2) {
        const float *r0 = strip + (size_t)k * w, *r1 = r0 + w;
        __m512i out[4];
        for (c = 0; c < w; c += 16) {
            __m512 a = _mm512_loadu_ps(r0 + c), b = k + 1 < kc ? _mm512_loadu_ps(r1 + c) : _mm512_setzero_ps();
            /* (a0 b0 a1 b1 ...) as bf16: one 512-bit register per 16 columns */
            out[c / 16] = (__m512i)_mm512_cvtne2ps_pbh(_mm512_permutex2var_ps(a, hi, b), _mm512_permutex2var_ps(a, lo, b));
        }
        for (c = 0; c < w; c += 16) _mm512_storeu_si512((void *)(o + (size_t)k * w + 2 * c), out[c / 16]);
    }
}
#endif

#endif /* DS_NO_TRAIN */

/* ---- f32 / bf16 peak: dependent chains of multiply-adds, FLOPs per call returned ------------ */
#if defined(DS__X86_SIMD)
/* 16 independent chains of one zmm instruction, enough to cover latency x ports; they start
   distinct (equal chains would be merged by the compiler) and are summed at the end. STEP(x)
   updates accumulator x; each step is FLOPS floating-point operations. */
#define DS__PEAK_ZMM(STEP, FLOPS)                                                                                          \
    __m512 a0 = _mm512_set1_ps(1.0f), a1 = _mm512_set1_ps(1.01f), a2 = _mm512_set1_ps(1.02f), a3 = _mm512_set1_ps(1.03f);       \
    __m512 a4 = _mm512_set1_ps(1.04f), a5 = _mm512_set1_ps(1.05f), a6 = _mm512_set1_ps(1.06f), a7 = _mm512_set1_ps(1.07f);       \
    __m512 a8 = _mm512_set1_ps(1.08f), a9 = _mm512_set1_ps(1.09f), a10 = _mm512_set1_ps(1.10f), a11 = _mm512_set1_ps(1.11f);     \
    __m512 a12 = _mm512_set1_ps(1.12f), a13 = _mm512_set1_ps(1.13f), a14 = _mm512_set1_ps(1.14f), a15 = _mm512_set1_ps(1.15f);   \
    long i;                                                                                                                \
    float out[16];                                                                                                         \
    for (i = 0; i < iters; i++) {                                                                                          \
        STEP(a0) STEP(a1) STEP(a2) STEP(a3) STEP(a4) STEP(a5) STEP(a6) STEP(a7)                                            \
        STEP(a8) STEP(a9) STEP(a10) STEP(a11) STEP(a12) STEP(a13) STEP(a14) STEP(a15)                                      \
    }                                                                                                                      \
    a0 = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)), _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));     \
    a8 = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11)), _mm512_add_ps(_mm512_add_ps(a12, a13), _mm512_add_ps(a14, a15))); \
    _mm512_storeu_ps(out, _mm512_add_ps(a0, a8));                                                                          \
    return (double)iters * 16 * (FLOPS) + (out[0] > 1e30f ? 1.0 : 0.0)

DS__AVX512 static double ds__peak_avx512(long iters) {
    const __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
#define DS__STEP(x) x = _mm512_fmadd_ps(x, m, c);
    DS__PEAK_ZMM(DS__STEP, 16 * 2);
#undef DS__STEP
}
/* vdpbf16ps: 16 lanes x 2 products each */
DS__AVX512BF16 static double ds__peak_avx512bf16(long iters) {
    const __m512bh m = (__m512bh)_mm512_set1_epi32(0x3f7f3f7f), c = (__m512bh)_mm512_set1_epi32(0x33d633d6);
#define DS__STEP(x) x = _mm512_dpbf16_ps(x, m, c);
    DS__PEAK_ZMM(DS__STEP, 32 * 2);
#undef DS__STEP
}
DS__AVX2 static double ds__peak_avx2(long iters) {
    __m256 a0 = _mm256_set1_ps(1.0f), a1 = _mm256_set1_ps(1.01f), a2 = _mm256_set1_ps(1.02f), a3 = _mm256_set1_ps(1.03f);
    __m256 a4 = _mm256_set1_ps(1.04f), a5 = _mm256_set1_ps(1.05f), a6 = _mm256_set1_ps(1.06f), a7 = _mm256_set1_ps(1.07f);
    __m256 a8 = _mm256_set1_ps(1.08f), a9 = _mm256_set1_ps(1.09f);
    __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    long i;
    float out[8];
    for (i = 0; i < iters; i++) {
        a0 = _mm256_fmadd_ps(a0, m, c); a1 = _mm256_fmadd_ps(a1, m, c); a2 = _mm256_fmadd_ps(a2, m, c); a3 = _mm256_fmadd_ps(a3, m, c);
        a4 = _mm256_fmadd_ps(a4, m, c); a5 = _mm256_fmadd_ps(a5, m, c); a6 = _mm256_fmadd_ps(a6, m, c); a7 = _mm256_fmadd_ps(a7, m, c);
        a8 = _mm256_fmadd_ps(a8, m, c); a9 = _mm256_fmadd_ps(a9, m, c);
    }
    a0 = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)), _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
    _mm256_storeu_ps(out, _mm256_add_ps(a0, _mm256_add_ps(a8, a9)));
    return (double)iters * 10 * 8 * 2 + (out[0] > 1e30f ? 1.0 : 0.0);
}
#endif
static double ds__peak_ref(long iters) {
    float a[8] = {1.0f, 1.01f, 1.02f, 1.03f, 1.04f, 1.05f, 1.06f, 1.07f};
    long i;
    int k;
    for (i = 0; i < iters; i++)
        for (k = 0; k < 8; k++) a[k] = a[k] * 0.999999f + 1e-7f;
    return (double)iters * 16 + (a[0] > 1e30f ? 1.0 : 0.0);
}

/* ---- dense attention products (the inference cache's f16 rows) ----------------------- */
#define DS__ATTN_BLOCK 64    /* keys converted from f16 and scored at a time */
/* f16 rows: the cache's conversions, round to nearest even (F16C gives the same bits) */
static void ds__f16_row_to_f32_ref(float *dst, const uint16_t *src, int n) {
    int i;
    for (i = 0; i < n; i++) dst[i] = ds__f16_to_f32(src[i]);
}
static void ds__f32_row_to_f16_ref(uint16_t *dst, const float *src, int n) {
    int i;
    for (i = 0; i < n; i++) dst[i] = ds__f32_to_f16(src[i]);
}
static void ds__f16_round_row_ref(float *x, int n) {
    int i;
    for (i = 0; i < n; i++) x[i] = ds__f16_to_f32(ds__f32_to_f16(x[i]));
}
#if defined(DS__X86_SIMD)
DS__AVX2 static void ds__f16_row_to_f32_avx2(float *dst, const uint16_t *src, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(src + i))));
    ds__f16_row_to_f32_ref(dst + i, src + i, n - i);
}
DS__AVX2 static void ds__f32_row_to_f16_avx2(uint16_t *dst, const float *src, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm_storeu_si128((__m128i *)(void *)(dst + i), _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    ds__f32_row_to_f16_ref(dst + i, src + i, n - i);
}
DS__AVX2 static void ds__f16_round_row_avx2(float *x, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT)));
    ds__f16_round_row_ref(x + i, n - i);
}
#endif

/* The two products of a tile in llama.cpp's float order (its f16 matmuls), so that scores and
   outputs agree with its bit for bit. With S = 16 slots (a batch of two or more tokens) term i
   of a dot goes into slot i % 16 by fused multiply-add, in order, and the slots are summed by
   ds__tree16. With S = 64 (one token, or a head size not a multiple of 16) term i goes into
   slot i % 64 over whole 64-term steps; slots fold as (s + s+32) + (s+16 + s+48) into 16, then
   ds__tree16, and terms past the last whole step are added after, in double. Keys past a row's
   last one are zero probabilities there, so they add nothing and are skipped here. */
static float ds__attn_fold(const float *a, int S) {
    float f[16];
    int l;
    if (S == 16) return ds__tree16(a);
    for (l = 0; l < 16; l++) f[l] = (a[l] + a[32 + l]) + (a[16 + l] + a[48 + l]);
    return ds__tree16(f);
}
/* score of key j: q . k (k[d] = kt[d * DS__ATTN_BLOCK + j]) times scale */
static float ds__attn_dot_ref(const float *q, const float *kt, int j, int D, int S, float scale) {
    float a[64];
    double r;
    int d, np = S == 16 ? D : D & ~63;
    for (d = 0; d < S; d++) a[d] = 0.0f;
    for (d = 0; d < np; d++) a[d % S] = fmaf(q[d], kt[(size_t)d * DS__ATTN_BLOCK + j], a[d % S]);
    r = (double)ds__attn_fold(a, S);
    for (; d < D; d++) r += (double)(q[d] * kt[(size_t)d * DS__ATTN_BLOCK + j]);
    return (float)r * scale;
}
static void ds__attn_scores_ref(float *sc, const float *q, const float *kt, int D, int n, float scale, int S) {
    int j;
    for (j = 0; j < n; j++) sc[j] = ds__attn_dot_ref(q, kt, j, D, S, scale);
}
/* acc (S, D): slot (j0 + j) % S += p[j] * v_j for j < n, v the block's rows (DS__ATTN_BLOCK, D).
   A row's keys start at 0, so key J < S is its slot's first: written, not added (no zeroing). */
static void ds__attn_pv_ref(float *acc, const float *p, const float *vb, int D, int n, int j0, int S) {
    int j, d;
    for (j = 0; j < n; j++) {
        float *a = acc + (size_t)((j0 + j) % S) * D;
        for (d = 0; d < D; d++) a[d] = j0 + j < S ? p[j] * vb[(size_t)j * D + d] : fmaf(p[j], vb[(size_t)j * D + d], a[d]);
    }
}
/* o (D) = the slots of acc (S, D) summed per element; slots from `used` on were never written
   (fewer keys than slots) and count as 0 */
static void ds__attn_pv_sum_ref(float *o, const float *acc, int D, int S, int used) {
    float a[64];
    int d, l;
    for (d = 0; d < D; d++) {
        for (l = 0; l < S; l++) a[l] = l < used ? acc[(size_t)l * D + d] : 0.0f;
        o[d] = ds__attn_fold(a, S);
    }
}
#if defined(DS__X86_SIMD)
/* 8 keys at a time; slot pairs (l, l + 8) together, the first level of ds__tree16 */
DS__AVX2 DS__HOT static void ds__attn_scores_avx2(float *sc, const float *q, const float *kt, int D, int n, float scale, int S) {
    int j0, l, i, g;
    if ((S == 16 && D % 16) || (S == 64 && D % 64)) {
        ds__attn_scores_ref(sc, q, kt, D, n, scale, S);
        return;
    }
    for (j0 = 0; j0 < n; j0 += 8) {
        __m256 t[8], u[4], r;
        float out[8];
        for (l = 0; l < 8; l++) {
            __m256 lo = _mm256_setzero_ps(), hi = _mm256_setzero_ps();
            if (S == 16) {
                for (i = 0; i < D; i += 16) {
                    lo = _mm256_fmadd_ps(_mm256_set1_ps(q[i + l]), _mm256_loadu_ps(kt + (size_t)(i + l) * DS__ATTN_BLOCK + j0), lo);
                    hi = _mm256_fmadd_ps(_mm256_set1_ps(q[i + l + 8]), _mm256_loadu_ps(kt + (size_t)(i + l + 8) * DS__ATTN_BLOCK + j0), hi);
                }
            } else {
                __m256 s[2][4];
                for (g = 0; g < 4; g++) s[0][g] = s[1][g] = _mm256_setzero_ps();
                for (i = 0; i < D; i += 64)
                    for (g = 0; g < 4; g++) {
                        int d0 = i + 16 * g + l, d1 = d0 + 8;
                        s[0][g] = _mm256_fmadd_ps(_mm256_set1_ps(q[d0]), _mm256_loadu_ps(kt + (size_t)d0 * DS__ATTN_BLOCK + j0), s[0][g]);
                        s[1][g] = _mm256_fmadd_ps(_mm256_set1_ps(q[d1]), _mm256_loadu_ps(kt + (size_t)d1 * DS__ATTN_BLOCK + j0), s[1][g]);
                    }
                lo = _mm256_add_ps(_mm256_add_ps(s[0][0], s[0][2]), _mm256_add_ps(s[0][1], s[0][3]));
                hi = _mm256_add_ps(_mm256_add_ps(s[1][0], s[1][2]), _mm256_add_ps(s[1][1], s[1][3]));
            }
            t[l] = _mm256_add_ps(lo, hi);
        }
        for (l = 0; l < 4; l++) u[l] = _mm256_add_ps(t[l], t[l + 4]);
        r = _mm256_add_ps(_mm256_add_ps(u[0], u[2]), _mm256_add_ps(u[1], u[3]));
        _mm256_storeu_ps(out, _mm256_mul_ps(r, _mm256_set1_ps(scale)));
        memcpy(sc + j0, out, (size_t)DS__MIN(8, n - j0) * sizeof(float));
    }
}
DS__AVX2 DS__HOT static void ds__attn_pv_avx2(float *acc, const float *p, const float *vb, int D, int n, int j0, int S) {
    int j, d;
    if (D % 8) {
        ds__attn_pv_ref(acc, p, vb, D, n, j0, S);
        return;
    }
    for (j = 0; j < n; j++) {
        float *a = acc + (size_t)((j0 + j) % S) * D;
        const float *v = vb + (size_t)j * D;
        __m256 pj = _mm256_set1_ps(p[j]);
        if (j0 + j < S)
            for (d = 0; d < D; d += 8) _mm256_storeu_ps(a + d, _mm256_mul_ps(pj, _mm256_loadu_ps(v + d)));
        else
            for (d = 0; d < D; d += 8) _mm256_storeu_ps(a + d, _mm256_fmadd_ps(pj, _mm256_loadu_ps(v + d), _mm256_loadu_ps(a + d)));
    }
}
DS__AVX2 static void ds__attn_pv_sum_avx2(float *o, const float *acc, int D, int S, int used) {
    int d, l;
    if (D % 8) {
        ds__attn_pv_sum_ref(o, acc, D, S, used);
        return;
    }
    for (d = 0; d < D; d += 8) {
        __m256 f[16], u[4];
#define DS__SLOT(i) ((i) < used ? _mm256_loadu_ps(acc + (size_t)(i) * D + d) : _mm256_setzero_ps())
        for (l = 0; l < 16; l++)
            f[l] = S == 16 ? DS__SLOT(l) : _mm256_add_ps(_mm256_add_ps(DS__SLOT(l), DS__SLOT(32 + l)), _mm256_add_ps(DS__SLOT(16 + l), DS__SLOT(48 + l)));
#undef DS__SLOT
        for (l = 0; l < 8; l++) f[l] = _mm256_add_ps(f[l], f[l + 8]);
        for (l = 0; l < 4; l++) u[l] = _mm256_add_ps(f[l], f[l + 4]);
        _mm256_storeu_ps(o + d, _mm256_add_ps(_mm256_add_ps(u[0], u[2]), _mm256_add_ps(u[1], u[3])));
    }
}
#endif

/* ---- AdamW ------------------------------------------------------------------------------- */
/* AdamW as PyTorch does it, per element: m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g^2,
   p = p decay - lr (m / bc1) / (sqrt(v / bc2) + eps), g = grad * gscale */
typedef struct ds__adamw {
    float *p, *m, *v;
    const float *g;
    float gscale, beta1, beta2, bc1, bc2, lr, eps, decay;
} ds__adamw;
#if !defined(DS_NO_TRAIN)
/* Each variant updates [i0, i1) in whole vectors and returns where it stopped; the reference
   (which does every element) finishes the rest, so the tail is the reference's arithmetic in
   the reference's code. */
static size_t ds__adamw_ref(const ds__adamw *a, size_t i0, size_t i1) {
    size_t i;
    for (i = i0; i < i1; i++) {
        float g = a->g[i] * a->gscale, mh, vh;
        a->m[i] = a->beta1 * a->m[i] + (1.0f - a->beta1) * g;
        a->v[i] = a->beta2 * a->v[i] + (1.0f - a->beta2) * g * g;
        mh = a->m[i] / a->bc1;
        vh = a->v[i] / a->bc2;
        a->p[i] = a->p[i] * a->decay - a->lr * mh / (sqrtf(vh) + a->eps);
    }
    return i1;
}
#if defined(DS__X86_SIMD)
/* the reference's arithmetic, operation for operation (so bit-identical) */
DS__AVX512 static size_t ds__adamw_avx512(const ds__adamw *a, size_t i0, size_t i1) {
    __m512 b1 = _mm512_set1_ps(a->beta1), b2 = _mm512_set1_ps(a->beta2), c1 = _mm512_set1_ps(1.0f - a->beta1);
    __m512 c2 = _mm512_set1_ps(1.0f - a->beta2), gs = _mm512_set1_ps(a->gscale), bc1 = _mm512_set1_ps(a->bc1);
    __m512 bc2 = _mm512_set1_ps(a->bc2), dec = _mm512_set1_ps(a->decay), lr = _mm512_set1_ps(a->lr), eps = _mm512_set1_ps(a->eps);
    size_t i;
    for (i = i0; i + 16 <= i1; i += 16) {
        __m512 g = _mm512_mul_ps(_mm512_loadu_ps(a->g + i), gs);
        __m512 m = _mm512_add_ps(_mm512_mul_ps(b1, _mm512_loadu_ps(a->m + i)), _mm512_mul_ps(c1, g));
        __m512 v = _mm512_add_ps(_mm512_mul_ps(b2, _mm512_loadu_ps(a->v + i)), _mm512_mul_ps(_mm512_mul_ps(c2, g), g));
        __m512 mh = _mm512_div_ps(m, bc1), vh = _mm512_div_ps(v, bc2);
        __m512 p = _mm512_mul_ps(_mm512_loadu_ps(a->p + i), dec);
        p = _mm512_sub_ps(p, _mm512_div_ps(_mm512_mul_ps(lr, mh), _mm512_add_ps(_mm512_sqrt_ps(vh), eps)));
        _mm512_storeu_ps(a->m + i, m);
        _mm512_storeu_ps(a->v + i, v);
        _mm512_storeu_ps(a->p + i, p);
    }
    return i;
}
#endif

/* ---- reduced-precision emulation ---------------------------------------------------------- */
/* x rounded to the nearest value with `mant` mantissa bits, smallest normal 2^emin (below it
   a fixed quantum, as subnormals): the shared rule of IEEE half and E4M3 */
static float ds__round_mant(float x, int mant, int emin) {
    int e;
    float a = fabsf(x);
    if (a == 0.0f || !(a < FLT_MAX)) return x;
    frexpf(a, &e);            /* a in [2^(e-1), 2^e) */
    if (e - 1 < emin) e = emin + 1;
    return ldexpf(rintf(ldexpf(x, mant - e + 1)), e - 1 - mant);
}
static float ds__round_f16_emul(float x) {
    float r = ds__round_mant(x, 10, -14);
    return fabsf(r) > 65504.0f ? (x > 0 ? INFINITY : -INFINITY) : r;
}
static float ds__round_e4m3(float x) {
    float r = ds__round_mant(x, 3, -6);
    return r > 448.0f ? 448.0f : r < -448.0f ? -448.0f : r;
}

/* dst = src rounded as the compute precision would store it. FP8 scales each (br, bc) block
   by 448 / amax first (DeepSeek-V3's fine-grained scaling) and divides again after the
   rounding; FP16 rounds as is, so values past 65504 become inf (what loss scaling guards). */
static void ds__round_prec_ref(float *dst, const float *src, int rows, int cols, int ld, ds_precision p, int br, int bc) {
    int r0, c0, r, c;
    if (p == DS_PREC_FP16) {
        for (r = 0; r < rows; r++)
            for (c = 0; c < cols; c++) dst[(size_t)r * ld + c] = ds__round_f16_emul(src[(size_t)r * ld + c]);
        return;
    }
    for (r0 = 0; r0 < rows; r0 += br)
        for (c0 = 0; c0 < cols; c0 += bc) {
            int r1 = DS__MIN(rows, r0 + br), c1 = DS__MIN(cols, c0 + bc);
            float amax = 0.0f, s;
            for (r = r0; r < r1; r++)
                for (c = c0; c < c1; c++) amax = DS__MAX(amax, fabsf(src[(size_t)r * ld + c]));
            if (!(amax < FLT_MAX)) { /* inf / NaN pass through for the loss scaler to see */
                for (r = r0; r < r1; r++)
                    for (c = c0; c < c1; c++) dst[(size_t)r * ld + c] = src[(size_t)r * ld + c] * INFINITY;
                continue;
            }
            s = amax > 0.0f ? 448.0f / amax : 1.0f;
            for (r = r0; r < r1; r++)
                for (c = c0; c < c1; c++) dst[(size_t)r * ld + c] = ds__round_e4m3(src[(size_t)r * ld + c] * s) / s;
        }
}

/* ---- cross-entropy rows ------------------------------------------------------------------ */
/* logits (V) become probabilities in place; returns -log p[target] (the sum in double), 0 for
   an ignored position (target < 0, DS_TARGET_IGNORE) */
static float ds__xent_ref(float *l, int target, int V) {
    float mx = -FLT_MAX;
    double sum = 0.0;
    int j;
    for (j = 0; j < V; j++) mx = DS__MAX(mx, l[j]);
    for (j = 0; j < V; j++) sum += (l[j] = expf(l[j] - mx));
    mx = target < 0 ? 0.0f : (float)(log(sum) - (double)logf(l[target]));
    for (j = 0; j < V; j++) l[j] = (float)(l[j] / sum);
    return mx;
}
/* probabilities (V) become dlogits = (p - onehot(target)) * scale, in place; an ignored
   position (target < 0) sends no gradient */
static void ds__xent_back_ref(float *p, int target, int V, float scale) {
    int j;
    if (target < 0) {
        memset(p, 0, sizeof(float) * (size_t)V);
        return;
    }
    p[target] -= 1.0f;
    for (j = 0; j < V; j++) p[j] *= scale;
}

#endif /* DS_NO_TRAIN */

/* ---- embedding rows, copies ---------------------------------------------------------------- */
/* out (n, K) = the rows ids of a (rows, K) table of type t, dequantized */
static void ds__embed_ref(float *out, ds_type t, const void *table, const int32_t *ids, int n, int K) {
    size_t row = ds__row_bytes(t, K);
    int i;
    for (i = 0; i < n; i++) ds__dequantize_row(t, DS__CAST(const uint8_t *, table) + (size_t)ids[i] * row, out + (size_t)i * K, K);
}
static void ds__copy_ref(void *dst, const void *src, size_t bytes) { memmove(dst, src, bytes); }

// >>backend
/* ---- the op layer ------------------------------------------------------------------------------
   Model and trainer code never calls a kernel or asks what the CPU has: every llama, qwen2 and
   deepseek2 forward, and every training forward / backward, runs its arithmetic through a
   ds__ops table that a backend filled once, when the session or trainer was created (as
   sokol_gfx's generic layer calls whatever backend it was built with). The generic drivers
   below (ds__matmul, ds__gemm, ds__rope) share the work over the pool and call the table's
   kernels per tile or row; the model code calls them, or the table's entries, directly.

   Backends (ds_backend, chosen by ds_session_config.backend / ds_train_config.backend, 0 =
   the default):
     DS_BACKEND_CPU  the fastest kernel of each op that ds_cpu_features() allows (so the test
                     mask of ds_cpu_set_mask() applies to sessions and trainers created after it)
     DS_BACKEND_REF  the scalar references (_ref) only: the ground truth, and the proof that
                     model code depends on nothing but the table
   Every x86 and NEON kernel of the integer-dot matmuls, RMSNorm, RoPE, softmax, SiLU, the f16
   conversions, the attention products and AdamW gives its reference's bits, so a model gives
   the same logits on both backends for those weight types; the float-weight and K-quant
   matmuls, the f32 dot / axpy and the training GEMM keep their own (close) summation order.

   Besides the arithmetic, the table carries what moves data: embedding rows (a session's
   token lookup, the trainer's), copies of activations (the trainer's residual saves), the
   cross-entropy rows and the reduced-precision casts (fp16, E4M3 with per-block scaling; bf16
   and f16 rows are the GEMM's packing and the cache's conversions), so a device backend sees
   every access to a tensor's data.

   Where data lives: ds__where on every weight (ds__mat.where) and trainer tensor
   (ds__ttensor.where), and on the table (ds__ops.where: the memory its kernels read and
   write). Today all are DS__HOST (zero): the loaders map weights into host memory and the
   CPU and reference backends compute there.

   How deepseek_cuda.h will register: it compiles this implementation, defines
   ds__ops_init_cuda() to fill a ds__ops (where = DS__DEVICE), and ds_backend gains
   DS_BACKEND_CUDA, which ds__ops_init hands to it; sessions and trainers keep the table as
   they keep the CPU's. What that needs beyond this table (not here yet): entries at the
   granularity a device runs well (a whole matmul, attention over a layer, a training forward
   / backward pair, rather than this table's row and tile kernels under CPU drivers), and an
   allocator entry that uploads weights whose `where` differs from the table's and places the
   session's and trainer's buffers where the backend computes. The model walk itself (>>infer,
   >>deepseek, >>train) already reaches arithmetic and data movement only through ds__ops and
   the drivers below, which is the seam those entries replace. */
#define DS__HAS(f, bits) (((f) & (bits)) == (bits))
#define DS__F_AVX2 (DS_CPU_AVX2 | DS_CPU_FMA | DS_CPU_F16C)
#define DS__F_AVX512 (DS__F_AVX2 | DS_CPU_AVX512F | DS_CPU_AVX512BW | DS_CPU_AVX512VL)
#define DS__F_VNNI512 (DS__F_AVX512 | DS_CPU_AVX512VNNI)
#define DS__F_BF16_512 (DS__F_AVX512 | DS_CPU_AVX512BF16)
#define DS__F_AVXVNNI (DS__F_AVX2 | DS_CPU_AVXVNNI)

typedef void (*ds__quantize_fn)(ds_type at, const float *x, void *dst, int K);
struct ds__sda_job;   /* >>sda */
static ds_status ds__sda_attention(struct ds__sda_job *j, ds_pool *pool, void *work, int n_tasks);
typedef void (*ds__micro_fn)(const float *ap, const float *bp, int kc, float *c, int ldc, int add);

/* Where a tensor's data lives: host memory, or the memory of the device a backend computes on.
   Weights (ds__mat) and the trainer's tensors say which; zero (host) is what every CPU-loaded
   tensor is. */
typedef enum ds__where { DS__HOST = 0, DS__DEVICE = 1 } ds__where;

typedef struct ds__ops {
    ds_backend backend;
    ds__where where;   /* the memory the kernels read and write */
    /* matmul y = x @ w^T, w of type wt: the tile kernel, x's conversion to ds__act_type(wt),
       and 1 where that conversion writes the fast-path layout (ds__qx) */
    ds__gemm_fn gemm[DS_TYPE_COUNT_];
    ds__quantize_fn quantize[DS_TYPE_COUNT_];
    unsigned char qx[DS_TYPE_COUNT_];
    /* rows of floats */
    float (*dot)(const float *a, const float *b, int n);
    void (*axpy)(float *y, float a, const float *x, int n);                 /* y += a x */
    void (*rmsnorm)(float *y, const float *x, const float *w, int n, float eps);
    void (*softmax)(float *x, int n);
    void (*swiglu)(float *y, const float *gate, const float *up, int n);    /* silu(gate) * up */
    void (*rope)(float *x, int n_heads, int head_dim, int count, int off, int neox, const float *cs, const float *sn);
    /* f16 rows (the KV cache) */
    void (*f16_to_f32)(float *dst, const uint16_t *src, int n);
    void (*f32_to_f16)(uint16_t *dst, const float *src, int n);
    void (*f16_round)(float *x, int n);
    /* dense attention's two products over a block of cached keys (ds__attn_fold's order) */
    void (*attn_scores)(float *sc, const float *q, const float *kt, int D, int n, float scale, int S);
    void (*attn_pv)(float *acc, const float *p, const float *vb, int D, int n, int j0, int S);
    void (*attn_pv_sum)(float *o, const float *acc, int D, int S, int used);
    /* embedding rows: out (n, K) = rows ids of a (rows, K) table of type t */
    void (*embed)(float *out, ds_type t, const void *table, const int32_t *ids, int n, int K);
    void (*copy)(void *dst, const void *src, size_t bytes);   /* within the backend's memory */
    /* training: cross-entropy rows (logits -> probabilities, returning -log p[target]; then
       probabilities -> (p - onehot) * scale), the reduced-precision casts (f32 rounded to fp16
       or to E4M3 in (br, bc) blocks scaled by 448 / amax, as ds_precision says) */
    float (*xent)(float *logits, int target, int V);
    void (*xent_back)(float *p, int target, int V, float scale);
    void (*round_prec)(float *dst, const float *src, int rows, int cols, int ld, ds_precision p, int br, int bc);
    /* SDA over one layer (>>sda), prefill or decode: block-sparse attention by the products above */
    ds_status (*sda_attention)(struct ds__sda_job *j, ds_pool *pool, void *work, int n_tasks);
    /* training: the GEMM's register tiles (f32, bf16 pairs), its packing, AdamW */
    ds__micro_fn micro[2];
    void (*pack_bt)(float *out, const float *b, int ldb, int kc16);          /* NULL: pack_b's loop does it */
    void (*to_bf16)(float *strip, int kc, int w);
    size_t (*adamw)(const ds__adamw *a, size_t i0, size_t i1);
    /* the machine's peak: FLOPs of one call of f32 FMA chains, bf16 dot chains (NULL: none) */
    double (*peak[2])(long iters);
} ds__ops;

/* the reference activation conversion: Q8_0 / Q8_1 blocks, or ds__quantize_row */
static void ds__quantize_act_ref(ds_type at, const float *x, void *dst, int K) {
    if (at == DS_TYPE_Q8_0 || at == DS_TYPE_Q8_1) ds__quantize_act_q8(x, dst, K / DS__QK, at == DS_TYPE_Q8_1);
    else ds__quantize_row(at, x, dst, K);
}

/* The kernels of one instruction set, found by the one naming scheme (name_ISA): the row ops,
   the f16 rows and attention products, the float-weight and K-quant matmul tiles, and the
   integer-dot tiles with their fast-path activation quantizer. */
#define DS__OPS_ROWS(o, ISA)                                                                                   \
    ((o)->dot = ds__dot_f32_##ISA, (o)->axpy = ds__axpy_f32_##ISA, (o)->rmsnorm = ds__rmsnorm_##ISA,          \
     (o)->softmax = ds__softmax_##ISA, (o)->swiglu = ds__swiglu_##ISA, (o)->rope = ds__rope_apply_##ISA)
#define DS__OPS_ATTN(o, ISA)                                                                                   \
    ((o)->f16_to_f32 = ds__f16_row_to_f32_##ISA, (o)->f32_to_f16 = ds__f32_row_to_f16_##ISA,                 \
     (o)->f16_round = ds__f16_round_row_##ISA, (o)->attn_scores = ds__attn_scores_##ISA,                      \
     (o)->attn_pv = ds__attn_pv_##ISA, (o)->attn_pv_sum = ds__attn_pv_sum_##ISA)
#define DS__OPS_FLOAT_KQUANT(o, ISA)                                                                           \
    ((o)->gemm[DS_TYPE_F32] = ds__gemm_f32_##ISA, (o)->gemm[DS_TYPE_F16] = ds__gemm_f16_##ISA,                \
     (o)->gemm[DS_TYPE_BF16] = ds__gemm_bf16_##ISA, (o)->gemm[DS_TYPE_Q4_K] = ds__gemm_q4_k_##ISA,            \
     (o)->gemm[DS_TYPE_Q5_K] = ds__gemm_q5_k_##ISA, (o)->gemm[DS_TYPE_Q6_K] = ds__gemm_q6_k_##ISA)
#define DS__OPS_QX(o, Q4_0, Q4_1, Q8_0, QUANT)                                                                 \
    ((o)->gemm[DS_TYPE_Q4_0] = (Q4_0), (o)->gemm[DS_TYPE_Q4_1] = (Q4_1), (o)->gemm[DS_TYPE_Q8_0] = (Q8_0),    \
     (o)->quantize[DS_TYPE_Q4_0] = (o)->quantize[DS_TYPE_Q4_1] = (o)->quantize[DS_TYPE_Q8_0] = (QUANT),       \
     (o)->qx[DS_TYPE_Q4_0] = (o)->qx[DS_TYPE_Q4_1] = (o)->qx[DS_TYPE_Q8_0] = 1)

/* Fills o for backend b: the references first, then (CPU) each op's best kernel. This is the
   one place that reads the CPU's features. */
static void ds__ops_init(ds__ops *o, ds_backend b) {
    static const ds_type wts[] = {DS_TYPE_F32, DS_TYPE_F16, DS_TYPE_Q4_0, DS_TYPE_Q4_1, DS_TYPE_Q8_0, DS_TYPE_Q4_K, DS_TYPE_Q5_K, DS_TYPE_Q6_K, DS_TYPE_BF16};
    unsigned f = b == DS_BACKEND_CPU ? ds_cpu_features() : 0u;
    size_t i;
    memset(o, 0, sizeof *o);
    o->backend = b;
    for (i = 0; i < DS_TYPE_COUNT_; i++) {
        o->gemm[i] = ds__gemm_ref;
        o->quantize[i] = ds__quantize_act_ref;
    }
    DS__OPS_ROWS(o, ref);
    DS__OPS_ATTN(o, ref);
    o->embed = ds__embed_ref;
    o->copy = ds__copy_ref;
    o->sda_attention = ds__sda_attention;
#if !defined(DS_NO_TRAIN)
    o->xent = ds__xent_ref;
    o->xent_back = ds__xent_back_ref;
    o->round_prec = ds__round_prec_ref;
    o->micro[0] = ds__gemm_micro_ref;
    o->micro[1] = ds__gemm_micro_bf16_ref;
    o->to_bf16 = ds__pack_to_bf16_ref;
    o->adamw = ds__adamw_ref;
#endif
    o->peak[0] = ds__peak_ref;
    (void)wts;
    (void)f;
#if defined(DS__X86_SIMD)
    if (DS__HAS(f, DS__F_AVX2)) {
        int l = DS__HAS(f, DS__F_VNNI512) ? 2 : DS__HAS(f, DS__F_AVXVNNI) ? 1 : 0;
        static const ds__gemm_fn q40[3] = {ds__gemm_q4_0_avx2, ds__gemm_q4_0_avxvnni, ds__gemm_q4_0_zmm};
        static const ds__gemm_fn q41[3] = {ds__gemm_q4_1_avx2, ds__gemm_q4_1_avxvnni, ds__gemm_q4_1_zmm};
        static const ds__gemm_fn q80[3] = {ds__gemm_q8_0_avx2, ds__gemm_q8_0_avxvnni, ds__gemm_q8_0_zmm};
        for (i = 0; i < sizeof wts / sizeof wts[0]; i++) o->quantize[wts[i]] = ds__quantize_act_avx2;
        DS__OPS_QX(o, q40[l], q41[l], q80[l], ds__quantize_qx_avx2);
        DS__OPS_FLOAT_KQUANT(o, avx2);
        o->gemm[DS_TYPE_Q5_0] = ds__gemm_q5_0_avx2;
        o->gemm[DS_TYPE_Q5_1] = ds__gemm_q5_1_avx2;
        o->gemm[DS_TYPE_IQ4_NL] = ds__gemm_iq4_nl_avx2;
        if (f & DS_CPU_AVX512BF16) o->gemm[DS_TYPE_BF16] = ds__gemm_bf16_zmm;
        DS__OPS_ROWS(o, avx2);
        DS__OPS_ATTN(o, avx2);
#if !defined(DS_NO_TRAIN)
        o->micro[0] = ds__gemm_micro_avx2;
#endif
        o->peak[0] = ds__peak_avx2;
    }
    if (DS__HAS(f, DS__F_AVX512)) {
#if !defined(DS_NO_TRAIN)
        o->micro[0] = ds__gemm_micro_avx512;
        o->pack_bt = ds__pack_bt_avx512;
        o->adamw = ds__adamw_avx512;
#endif
        o->peak[0] = ds__peak_avx512;
    }
    if (DS__HAS(f, DS__F_BF16_512)) {
#if !defined(DS_NO_TRAIN)
        o->micro[1] = ds__gemm_micro_avx512bf16;
        o->to_bf16 = ds__pack_to_bf16_avx512;
#endif
        o->peak[1] = ds__peak_avx512bf16;
    }
#elif defined(DS__NEON)
    if (f & DS_CPU_NEON) {
        DS__OPS_QX(o, ds__gemm_q4_0_neon, ds__gemm_q4_1_neon, ds__gemm_q8_0_neon, ds__quantize_qx_neon);
        DS__OPS_FLOAT_KQUANT(o, neon);
        DS__OPS_ROWS(o, neon);
    }
#endif
}

/* ---- matmul ----------------------------------------------------------------------------------- */
/* bytes of one activation row converted for weights of type wt */
static size_t ds__mm_act_row(const ds__ops *o, ds_type wt, int K) {
    ds_type at = ds__act_type(wt);
    if (o->qx[wt]) return ds__qx_row_bytes(K);
    return at == DS_TYPE_F32 ? (size_t)K * sizeof(float) : DS__A64(ds__row_bytes(at, K));
}

/* the largest activation buffer any backend needs, so a caller's buffer fits them all */
static size_t ds__matmul_wsize(ds_type wt, int T, int K) {
    ds_type at = ds__act_type(wt);
    size_t row;
    if (at == DS_TYPE_F32) return 0;
    row = DS__A64(ds__row_bytes(at, K));
    if (at == DS_TYPE_Q8_0 || at == DS_TYPE_Q8_1) row = DS__MAX(row, ds__qx_row_bytes(K));
    return (size_t)T * row;
}

static void ds__matmul_quantize_task(void *ctx, int t, int n) {
    const ds__mm *m = DS__CAST(const ds__mm *, ctx);
    (void)n;
    m->quantize(ds__act_type(m->wt), m->x + (size_t)t * m->K, (void *)(uintptr_t)(m->xa + (size_t)t * m->xa_row), m->K);
}

static void ds__matmul_task(void *ctx, int i, int n) {
    const ds__mm *m = DS__CAST(const ds__mm *, ctx);
    int tt = i / m->n_tiles, nt = i % m->n_tiles;
    int t0 = tt * m->t_chunk, n0 = nt * m->n_chunk;
    (void)n;
    m->gemm(m, t0, DS__MIN(m->T, t0 + m->t_chunk), n0, DS__MIN(m->N, n0 + m->n_chunk));
}

/* y (T, N) = x (T, K) @ w^T with w (N, K) of type wt. wsbuf: ds__matmul_wsize bytes, 64-aligned.
   Tasks are tiles of up to 64 tokens x n_chunk rows; n_chunk shrinks until there are several
   tasks per thread (so two threads balance) but stays a multiple of 4 rows (the micro-tile). */
static void ds__matmul(const ds__ops *o, ds_pool *pool, float *y, const float *x, int T, const void *w, ds_type wt, int N, int K, void *wsbuf) {
    ds__mm m;
    int n_threads = ds_pool_size(pool), t_tiles;
    memset(&m, 0, sizeof m);
    m.T = T; m.N = N; m.K = K; m.wt = wt;
    m.x = x;
    m.w = DS__CAST(const uint8_t *, w);
    m.w_row = ds__row_bytes(wt, K);
    m.gemm = o->gemm[wt];
    m.quantize = o->quantize[wt];
    m.xa_row = ds__mm_act_row(o, wt, K);
    if (ds__act_type(wt) == DS_TYPE_F32) {
        m.xa = DS__CAST(const uint8_t *, (const void *)x);
    } else {
        m.xa = DS__CAST(const uint8_t *, wsbuf);
        if (T > 1) ds_pool_run(pool, ds__matmul_quantize_task, &m, T);
        else ds__matmul_quantize_task(&m, 0, 1);
    }
    m.y = y;
    m.t_chunk = DS__MIN(T, 64);
    t_tiles = (T + m.t_chunk - 1) / m.t_chunk;
    m.n_chunk = 256;
    while (m.n_chunk > 4 && t_tiles * ((N + m.n_chunk - 1) / m.n_chunk) < 8 * n_threads) m.n_chunk /= 2;
    m.n_tiles = (N + m.n_chunk - 1) / m.n_chunk;
    ds_pool_run(pool, ds__matmul_task, &m, m.n_tiles * t_tiles);
}

#if !defined(DS_NO_TRAIN)
/* ---- AdamW ------------------------------------------------------------------------------------ */
/* elements [i0, i1): the backend's vectors, then the reference for the tail */
static void ds__adamw_update(const ds__ops *o, const ds__adamw *a, size_t i0, size_t i1) { ds__adamw_ref(a, o->adamw(a, i0, i1), i1); }
#endif /* DS_NO_TRAIN */

/* ---- RoPE ---------------------------------------------------------------- */
#if !defined(DS_NO_DEEPSEEK2) /* MLA's RoPE without YaRN */
/* theta_i = pos * base^(-2i/n_rot), computed in double once per call and shared by the heads
   (in chunks of 128 pairs, so any n_rot works with a stack buffer) */
static void ds__rope(const ds__ops *o, float *x, int n_heads, int head_dim, int n_rot, int pos, float base, int neox) {
    float cs[128], sn[128];
    int i0, i, half = n_rot / 2;
    for (i0 = 0; i0 < half; i0 += 128) {
        int count = DS__MIN(128, half - i0);
        for (i = 0; i < count; i++) {
            double theta = (double)pos * pow((double)base, -2.0 * (i0 + i) / n_rot);
            cs[i] = (float)cos(theta);
            sn[i] = (float)sin(theta);
        }
        o->rope(x + (neox ? i0 : 2 * i0), n_heads, head_dim, count, half, neox, cs, sn);
    }
}
#endif


/* CPU time of the process (who = 0) or of the calling thread (who = 1); wall time where the
   platform has no such clock */
static double ds__cpu_time(int who) {
#if defined(_WIN32)
    (void)who;
    return ds_time();
#else
    struct timespec ts;
    if (clock_gettime(who ? CLOCK_THREAD_CPUTIME_ID : CLOCK_PROCESS_CPUTIME_ID, &ts) != 0) return ds_time();
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
#endif
}

#if !defined(DS_NO_TRAIN)
/* ---- training GEMM ---------------------------------------------------------------------------
   C (M, N) (+)= op(A) (M, K) @ op(B) (K, N), row-major, op = identity or transpose. Every
   product the trainer needs is one call: forward y = x @ W^T, backward dx = dy @ W and
   dW += dy^T @ x. The GotoBLAS loop order: for each KC slice of K and NC block of columns, the
   pool packs that B block once into NR-column strips (shared), then each task packs an MC-row
   block of A into MR-row strips (its own slot) and runs the MR x NR register-tile
   micro-kernel over every strip pair. Each C element is written by one task per K slice in a
   fixed order, so results do not depend on the thread count. bf16 packs K in pairs for
   vdpbf16ps (f32 accumulation). */

typedef struct ds__gemm_ws {
    const ds__ops *ops;   /* the register tiles and packing kernels */
    ds_pool *pool;
    int n_slots;
    float *pack_a;        /* n_slots * MC * KC floats */
    float *pack_b;        /* KC * NC floats (shared by the tasks of one block) */
    int *busy;            /* slot claimed by a running task (atomic) */
    double seconds;       /* wall time spent in ds__gemm */
    double cpu_seconds;   /* process CPU time spent in ds__gemm */
} ds__gemm_ws;


/* one K slice x N block of a product */
typedef struct ds__gemm_args {
    ds__gemm_ws *ws;
    int ta, tb, M, N, K, lda, ldb, ldc, bf16, first;
    const float *A, *B;
    float *C;
    int k0, kc, n0, nc, m_tasks, n_split;
} ds__gemm_args;

static int ds__slot_acquire(ds__gemm_ws *ws) {
    for (;;) {
        int s;
        for (s = 0; s < ws->n_slots; s++) {
            int expect = 0;
            if (__atomic_compare_exchange_n(&ws->busy[s], &expect, 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) return s;
        }
        ds__cpu_relax();
    }
}

/* op(A) rows [i0, i0+MR) x the K slice -> out[k][r] (rows past M are zero) */
static void ds__pack_a(float *out, const ds__gemm_args *g, int i0) {
    int r, k, kc = g->kc, mr = DS__MIN(DS__GEMM_MR, g->M - i0);
    if (g->ta) {
        for (k = 0; k < kc; k++) {
            const float *a = g->A + (size_t)(g->k0 + k) * g->lda + i0;
            float *o = out + k * DS__GEMM_MR;
            for (r = 0; r < mr; r++) o[r] = a[r];
            for (; r < DS__GEMM_MR; r++) o[r] = 0.0f;
        }
        return;
    }
    for (r = 0; r < DS__GEMM_MR; r++) {
        const float *a = g->A + (size_t)(i0 + r) * g->lda + g->k0;
        if (r >= mr)
            for (k = 0; k < kc; k++) out[k * DS__GEMM_MR + r] = 0.0f;
        else
            for (k = 0; k < kc; k++) out[k * DS__GEMM_MR + r] = a[k];
    }
}

/* op(B) the K slice x cols [j0, j0+NR) -> out[k][c] (cols past N are zero) */
static void ds__pack_b(float *out, const ds__gemm_args *g, int j0) {
    int c, k, kc = g->kc, nr = DS__MIN(DS__GEMM_NR, g->N - j0);
    if (!g->tb) {
        for (k = 0; k < kc; k++) {
            const float *b = g->B + (size_t)(g->k0 + k) * g->ldb + j0;
            float *o = out + k * DS__GEMM_NR;
            for (c = 0; c < nr; c++) o[c] = b[c];
            for (; c < DS__GEMM_NR; c++) o[c] = 0.0f;
        }
        return;
    }
    k = 0;
    if (nr == DS__GEMM_NR && g->ws->ops->pack_bt) {
        k = kc & ~15;
        g->ws->ops->pack_bt(out, g->B + (size_t)j0 * g->ldb + g->k0, g->ldb, k);
    }
    for (c = 0; c < DS__GEMM_NR; c++) {
        const float *b = g->B + (size_t)(j0 + c) * g->ldb + g->k0;
        int kk;
        if (c >= nr)
            for (kk = k; kk < kc; kk++) out[kk * DS__GEMM_NR + c] = 0.0f;
        else
            for (kk = k; kk < kc; kk++) out[kk * DS__GEMM_NR + c] = b[kk];
    }
}

/* the strip stride: room for kc rounded up to even (bf16 pairs) */
#define DS__GEMM_KC_PAD (DS__GEMM_KC + 2)

static void ds__gemm_pack_b_task(void *ctx, int t, int n) {
    const ds__gemm_args *g = (const ds__gemm_args *)ctx;
    float *strip = g->ws->pack_b + (size_t)t * DS__GEMM_NR * DS__GEMM_KC_PAD;
    (void)n;
    ds__pack_b(strip, g, g->n0 + t * DS__GEMM_NR);
    if (g->bf16) g->ws->ops->to_bf16(strip, g->kc, DS__GEMM_NR);
}

static void ds__gemm_block_task(void *ctx, int t, int n) {
    const ds__gemm_args *g = (const ds__gemm_args *)ctx;
    int slot = ds__slot_acquire(g->ws), mt = t % g->m_tasks, nt = t / g->m_tasks;
    int strips = (g->nc + DS__GEMM_NR - 1) / DS__GEMM_NR;
    int s0 = strips * nt / g->n_split, s1 = strips * (nt + 1) / g->n_split;
    int m0 = mt * DS__GEMM_MC, m1 = DS__MIN(g->M, m0 + DS__GEMM_MC), i, s;
    float *pa = g->ws->pack_a + (size_t)slot * DS__GEMM_MC * DS__GEMM_KC_PAD;
    ds__micro_fn micro = g->ws->ops->micro[g->bf16];
    int add = !g->first;
    (void)n;
    for (i = m0; i < m1; i += DS__GEMM_MR) {
        float *a = pa + (size_t)(i - m0) * DS__GEMM_KC_PAD;
        ds__pack_a(a, g, i);
        if (g->bf16) g->ws->ops->to_bf16(a, g->kc, DS__GEMM_MR);
    }
    for (s = s0; s < s1; s++) {
        const float *b = g->ws->pack_b + (size_t)s * DS__GEMM_NR * DS__GEMM_KC_PAD;
        int j = g->n0 + s * DS__GEMM_NR, nr = DS__MIN(DS__GEMM_NR, g->N - j);
        for (i = m0; i < m1; i += DS__GEMM_MR) {
            const float *a = pa + (size_t)(i - m0) * DS__GEMM_KC_PAD;
            int mr = DS__MIN(DS__GEMM_MR, g->M - i);
            float *c = g->C + (size_t)i * g->ldc + j;
            if (mr == DS__GEMM_MR && nr == DS__GEMM_NR) {
                micro(a, b, g->kc, c, g->ldc, add);
            } else { /* edge tile: through a local tile */
                float tile[DS__GEMM_MR * DS__GEMM_NR];
                int r, q;
                micro(a, b, g->kc, tile, DS__GEMM_NR, 0);
                for (r = 0; r < mr; r++)
                    for (q = 0; q < nr; q++) c[(size_t)r * g->ldc + q] = (add ? c[(size_t)r * g->ldc + q] : 0.0f) + tile[r * DS__GEMM_NR + q];
            }
        }
    }
    DS__ATOMIC_STORE(&g->ws->busy[slot], 0);
}

static ds_status ds__gemm_ws_init(ds__gemm_ws *ws, const ds__ops *ops, ds_pool *pool) {
    memset(ws, 0, sizeof *ws);
    ws->ops = ops;
    ws->pool = pool;
    ws->n_slots = ds_pool_size(pool);
    ws->pack_a = DS__CAST(float *, ds__calloc((size_t)ws->n_slots * DS__GEMM_MC * DS__GEMM_KC_PAD, sizeof(float)));
    ws->pack_b = DS__CAST(float *, ds__calloc((size_t)DS__GEMM_NC * DS__GEMM_KC_PAD, sizeof(float)));
    ws->busy = DS__CAST(int *, ds__calloc((size_t)ws->n_slots, sizeof(int)));
    if (!ws->pack_a || !ws->pack_b || !ws->busy) return ds__fail(DS_ERR_NO_MEMORY, "train: out of memory for GEMM buffers");
    return DS_OK;
}
static void ds__gemm_ws_free(ds__gemm_ws *ws) {
    ds_free(ws->pack_a);
    ds_free(ws->pack_b);
    ds_free(ws->busy);
    memset(ws, 0, sizeof *ws);
}

/* C (M, N) (+)= op(A) @ op(B). ta: A is stored (K, M); tb: B is stored (N, K). */
static void ds__gemm(ds__gemm_ws *ws, int bf16, int ta, int tb, int M, int N, int K, const float *A, int lda,
                     const float *B, int ldb, float *C, int ldc, int acc) {
    ds__gemm_args g;
    double t0 = ds_time(), c0 = ds__cpu_time(0);
    int want = 4 * ds_pool_size(ws->pool);
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        int i;
        if (!acc) for (i = 0; i < M; i++) memset(C + (size_t)i * ldc, 0, sizeof(float) * (size_t)N);
        return;
    }
    memset(&g, 0, sizeof g);
    g.ws = ws; g.ta = ta; g.tb = tb; g.M = M; g.N = N; g.K = K; g.lda = lda; g.ldb = ldb; g.ldc = ldc;
    g.bf16 = bf16; g.A = A; g.B = B; g.C = C;
    g.m_tasks = (M + DS__GEMM_MC - 1) / DS__GEMM_MC;
    for (g.k0 = 0; g.k0 < K; g.k0 += DS__GEMM_KC) {
        g.kc = DS__MIN(DS__GEMM_KC, K - g.k0);
        g.first = g.k0 == 0 && !acc;
        for (g.n0 = 0; g.n0 < N; g.n0 += DS__GEMM_NC) {
            int strips;
            g.nc = DS__MIN(DS__GEMM_NC, N - g.n0);
            strips = (g.nc + DS__GEMM_NR - 1) / DS__GEMM_NR;
            /* few row blocks: split the columns too, so every thread has work */
            g.n_split = DS__MAX(1, DS__MIN(strips, (want + g.m_tasks - 1) / g.m_tasks));
            ds_pool_run(ws->pool, ds__gemm_pack_b_task, &g, strips);
            ds_pool_run(ws->pool, ds__gemm_block_task, &g, g.m_tasks * g.n_split);
        }
    }
    ws->seconds += ds_time() - t0;
    ws->cpu_seconds += ds__cpu_time(0) - c0;
}

#endif /* DS_NO_TRAIN */

/* ---- f32 FMA peak ------------------------------------------------------------------------- */
typedef struct ds__peak_args {
    double seconds;
    double *flops, *cpu;
    double (*peak)(long iters);   /* the CPU backend's peak[bf16] */
} ds__peak_args;

static void ds__peak_task(void *ctx, int t, int n) {
    ds__peak_args *a = (ds__peak_args *)ctx;
    double t0 = ds_time(), c0 = ds__cpu_time(1), f = 0.0;
    (void)n;
    while (ds_time() - t0 < a->seconds) f += a->peak(200000);
    a->flops[t] = f;
    a->cpu[t] = ds__cpu_time(1) - c0;
}

static double ds__peak_gflops(int n_threads, double seconds, double *per_core, int bf16) {
    ds_pool *pool = NULL;
    ds_pool_config pc;
    ds__peak_args a;
    ds__ops ops;
    double t0, total = 0.0, cpu = 0.0;
    int i, n;
    if (per_core) *per_core = 0.0;
    ds__ops_init(&ops, DS_BACKEND_CPU);
    a.peak = ops.peak[bf16 ? 1 : 0];
    if (!a.peak) return 0.0;
    memset(&pc, 0, sizeof pc);
    pc.n_threads = n_threads;
    if (ds_pool_create(&pc, &pool) != DS_OK) return 0.0;
    n = ds_pool_size(pool);
    a.seconds = seconds > 0.0 ? seconds : 0.5;
    a.flops = DS__CAST(double *, ds__calloc((size_t)n * 2, sizeof(double)));
    if (!a.flops) {
        ds_pool_free(pool);
        return 0.0;
    }
    a.cpu = a.flops + n;
    t0 = ds_time();
    ds_pool_run(pool, ds__peak_task, &a, n);
    t0 = ds_time() - t0;
    for (i = 0; i < n; i++) {
        total += a.flops[i];
        cpu += a.cpu[i];
    }
    if (per_core) *per_core = cpu > 0.0 ? total / cpu * 1e-9 : 0.0;
    ds_free(a.flops);
    ds_pool_free(pool);
    return total / t0 * 1e-9;
}
DS_API double ds_cpu_f32_peak_gflops(int n_threads, double seconds, double *per_core) { return ds__peak_gflops(n_threads, seconds, per_core, 0); }
DS_API double ds_cpu_bf16_peak_gflops(int n_threads, double seconds, double *per_core) { return ds__peak_gflops(n_threads, seconds, per_core, 1); }


// >>gguf
/* Layout (all little-endian): "GGUF", u32 version, u64 n_tensors, u64 n_kv; n_kv times
   {string key, u32 type, value}; n_tensors times {string name, u32 n_dims, u64 ne[n_dims],
   u32 type, u64 offset}; padding to the alignment; the data section. A string is a u64 byte
   length and the bytes; an array is u32 element type, u64 count, the elements. */
#define DS__GGUF_DEFAULT_ALIGN 32u
#define DS__GGUF_NAME_SHOWN 96   /* longest key or tensor name quoted in a message */

static uint32_t ds__gguf_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t ds__gguf_u64(const uint8_t *p) { return (uint64_t)ds__gguf_u32(p) | (uint64_t)ds__gguf_u32(p + 4) << 32; }

/* bytes of one value of a fixed-size type; 0 for string, array and unknown ids */
static size_t ds__gguf_scalar_size(uint32_t t) {
    switch (t) {
    case DS_GGUF_U8: case DS_GGUF_I8: case DS_GGUF_BOOL: return 1;
    case DS_GGUF_U16: case DS_GGUF_I16: return 2;
    case DS_GGUF_U32: case DS_GGUF_I32: case DS_GGUF_F32: return 4;
    case DS_GGUF_U64: case DS_GGUF_I64: case DS_GGUF_F64: return 8;
    default: return 0;
    }
}

DS_API const char *ds_gguf_type_name(ds_gguf_type t) {
    static const char *const names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64"};
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "?";
}

/* ---- name index: open addressing over indices, shared by reader and writer ---------------- */
typedef ds_str (*ds__gguf_key_fn)(const void *owner, int64_t i);
/* The hash is seeded per table, so a hostile file cannot choose names that all land in one
   probe run and make opening it quadratic. */
typedef struct ds__gguf_index {
    uint64_t *hash;   /* per slot */
    int64_t *slot;    /* item index + 1; 0 = empty */
    uint64_t mask;    /* capacity - 1 (capacity a power of two) */
    uint64_t seed;
} ds__gguf_index;

static uint64_t ds__gguf_mix(uint64_t h) {   /* a 64-bit finalizer: every input bit moves every output bit */
    h ^= h >> 33;
    h *= UINT64_C(0xff51afd7ed558ccd);
    h ^= h >> 33;
    h *= UINT64_C(0xc4ceb9fe1a85ec53);
    return h ^ (h >> 33);
}
static uint64_t ds__gguf_hash(uint64_t seed, const char *s, size_t n) {   /* seeded FNV-1a, mixed */
    uint64_t h = UINT64_C(1469598103934665603) ^ seed;
    size_t i;
    for (i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * UINT64_C(1099511628211);
    return ds__gguf_mix(h);
}
static void ds__gguf_index_free(ds__gguf_index *ix) {
    ds_free(ix->hash);
    ds_free(ix->slot);
    memset(ix, 0, sizeof *ix);
}
static ds_status ds__gguf_index_alloc(ds__gguf_index *ix, uint64_t n_items) {
    uint64_t cap = 16;
    while (cap < 2 * n_items) cap *= 2;
    memset(ix, 0, sizeof *ix);
    ix->hash = DS__CAST(uint64_t *, ds__calloc((size_t)cap, sizeof(uint64_t)));
    ix->slot = DS__CAST(int64_t *, ds__calloc((size_t)cap, sizeof(int64_t)));
    if (!ix->hash || !ix->slot) {
        ds__gguf_index_free(ix);
        return ds__fail(DS_ERR_NO_MEMORY, "gguf: out of memory for a name index of %llu entries", (unsigned long long)n_items);
    }
    ix->mask = cap - 1;
    ix->seed = ds__gguf_mix((uint64_t)(uintptr_t)ix ^ (uint64_t)(ds_time() * 1e9));
    return DS_OK;
}
/* index of the item named s[0..n), or -1 */
static int64_t ds__gguf_index_find(const ds__gguf_index *ix, const char *s, size_t n, ds__gguf_key_fn key_at, const void *owner) {
    uint64_t h, i;
    if (!ix->slot) return -1;
    h = ds__gguf_hash(ix->seed, s, n);
    for (i = h & ix->mask; ix->slot[i]; i = (i + 1) & ix->mask) {
        if (ix->hash[i] == h) {
            ds_str k = key_at(owner, ix->slot[i] - 1);
            if (k.len == n && memcmp(k.ptr, s, n) == 0) return ix->slot[i] - 1;
        }
    }
    return -1;
}
/* adds item idx named s[0..n) (known absent); the table must have room */
static void ds__gguf_index_put(ds__gguf_index *ix, const char *s, size_t n, int64_t idx) {
    uint64_t h = ds__gguf_hash(ix->seed, s, n), i;
    for (i = h & ix->mask; ix->slot[i]; i = (i + 1) & ix->mask) {}
    ix->hash[i] = h;
    ix->slot[i] = idx + 1;
}

/* ---- reader ---------------------------------------------------------------------------- */
struct ds_gguf {
    ds_mapped_file map;       /* owned when opened from a path */
    const uint8_t *base;
    uint64_t size;
    uint32_t version, alignment;
    uint64_t data_offset;
    int64_t n_kv, n_tensors;
    ds_gguf_kv *kv;
    ds_gguf_tensor *tensors;
    ds__gguf_index kv_index, tensor_index;
};

/* parse position plus a description of what is being read, for messages */
typedef struct ds__gguf_cur {
    const uint8_t *base;
    uint64_t size, pos;
    char what[DS__GGUF_NAME_SHOWN + 48];   /* "key 'general.name'", "tensor #3 'x'" */
} ds__gguf_cur;

static void ds__gguf_what(ds__gguf_cur *c, const char *kind, ds_str name) {
    int n = name.len > DS__GGUF_NAME_SHOWN ? DS__GGUF_NAME_SHOWN : (int)name.len;
    snprintf(c->what, sizeof c->what, "%s '%.*s%s'", kind, n, name.ptr ? name.ptr : "", name.len > DS__GGUF_NAME_SHOWN ? "..." : "");
}

static ds_status ds__gguf_need(ds__gguf_cur *c, uint64_t n, const char *field) {
    if (n <= c->size - c->pos) return DS_OK;
    return ds__fail(DS_ERR_FORMAT, "gguf: %s: %s at offset %llu is cut off (needs %llu bytes, file has %llu)", c->what, field,
                    (unsigned long long)c->pos, (unsigned long long)n, (unsigned long long)c->size);
}
static ds_status ds__gguf_read_u32(ds__gguf_cur *c, const char *field, uint32_t *v) {
    ds_status s = ds__gguf_need(c, 4, field);
    if (s) return s;
    *v = ds__gguf_u32(c->base + c->pos);
    c->pos += 4;
    return DS_OK;
}
static ds_status ds__gguf_read_u64(ds__gguf_cur *c, const char *field, uint64_t *v) {
    ds_status s = ds__gguf_need(c, 8, field);
    if (s) return s;
    *v = ds__gguf_u64(c->base + c->pos);
    c->pos += 8;
    return DS_OK;
}
static ds_status ds__gguf_read_str(ds__gguf_cur *c, const char *field, ds_str *out) {
    uint64_t len, at = c->pos;
    ds_status s = ds__gguf_read_u64(c, field, &len);
    if (s) return s;
    if (len > c->size - c->pos)
        return ds__fail(DS_ERR_BOUNDS, "gguf: %s: %s length %llu at offset %llu runs past the end of the file (%llu bytes)", c->what, field,
                        (unsigned long long)len, (unsigned long long)at, (unsigned long long)c->size);
    out->ptr = (const char *)(c->base + c->pos);
    out->len = (size_t)len;
    c->pos += len;
    return DS_OK;
}

static ds_status ds__gguf_check_bools(ds__gguf_cur *c, const uint8_t *p, uint64_t n) {
    uint64_t i;
    for (i = 0; i < n; i++)
        if (p[i] > 1) return ds__fail(DS_ERR_FORMAT, "gguf: %s: bool value %u at offset %llu is not 0 or 1", c->what, p[i], (unsigned long long)(p + i - c->base));
    return DS_OK;
}

static ds_status ds__gguf_read_array(ds__gguf_cur *c, ds_gguf_kv *kv) {
    uint32_t et;
    uint64_t n, i, esize, at;
    ds_status s = ds__gguf_read_u32(c, "array element type", &et);
    if (!s) s = ds__gguf_read_u64(c, "array length", &n);
    if (s) return s;
    at = c->pos - 8;
    if (et == DS_GGUF_ARRAY) return ds__fail(DS_ERR_UNSUPPORTED, "gguf: %s: nested arrays are not supported", c->what);
    if (et != DS_GGUF_STRING && !ds__gguf_scalar_size(et)) return ds__fail(DS_ERR_TYPE, "gguf: %s: unknown array element type %u at offset %llu", c->what, et, (unsigned long long)(at - 4));
    kv->arr_type = (ds_gguf_type)et;
    kv->arr_len = n;
    kv->data = c->base + c->pos;
    if (et == DS_GGUF_STRING) {   /* each string takes at least its 8-byte length */
        if (n > (c->size - c->pos) / 8)
            return ds__fail(DS_ERR_BOUNDS, "gguf: %s: %llu strings at offset %llu cannot fit in the %llu bytes left", c->what, (unsigned long long)n,
                            (unsigned long long)at, (unsigned long long)(c->size - c->pos));
        for (i = 0; i < n; i++) {
            ds_str str;
            s = ds__gguf_read_str(c, "array string", &str);
            if (s) return s;
        }
        return DS_OK;
    }
    esize = ds__gguf_scalar_size(et);
    if (n > UINT64_MAX / esize) return ds__fail(DS_ERR_OVERFLOW, "gguf: %s: array of %llu %s at offset %llu overflows a size", c->what, (unsigned long long)n, ds_gguf_type_name((ds_gguf_type)et), (unsigned long long)at);
    if (n * esize > c->size - c->pos)
        return ds__fail(DS_ERR_BOUNDS, "gguf: %s: array of %llu %s at offset %llu runs past the end of the file (%llu bytes)", c->what, (unsigned long long)n,
                        ds_gguf_type_name((ds_gguf_type)et), (unsigned long long)at, (unsigned long long)c->size);
    if (et == DS_GGUF_BOOL && (s = ds__gguf_check_bools(c, c->base + c->pos, n))) return s;
    c->pos += n * esize;
    return DS_OK;
}

static ds_status ds__gguf_read_value(ds__gguf_cur *c, ds_gguf_kv *kv) {
    uint32_t t;
    size_t sz;
    ds_status s = ds__gguf_read_u32(c, "value type", &t);
    if (s) return s;
    sz = ds__gguf_scalar_size(t);
    if (!sz && t != DS_GGUF_STRING && t != DS_GGUF_ARRAY)
        return ds__fail(DS_ERR_TYPE, "gguf: %s: unknown value type %u at offset %llu", c->what, t, (unsigned long long)(c->pos - 4));
    kv->type = (ds_gguf_type)t;
    if (t == DS_GGUF_ARRAY) return ds__gguf_read_array(c, kv);
    kv->data = c->base + c->pos;
    if (t == DS_GGUF_STRING) {
        ds_str v;
        return ds__gguf_read_str(c, "string value", &v);
    }
    if ((s = ds__gguf_need(c, sz, "value"))) return s;
    if (t == DS_GGUF_BOOL && (s = ds__gguf_check_bools(c, kv->data, 1))) return s;
    c->pos += sz;
    return DS_OK;
}

static ds_str ds__gguf_kv_key(const void *g, int64_t i) { return ((const ds_gguf *)g)->kv[i].key; }
static ds_str ds__gguf_tensor_name(const void *g, int64_t i) { return ((const ds_gguf *)g)->tensors[i].name; }

static ds_status ds__gguf_read_kvs(ds_gguf *g, ds__gguf_cur *c) {
    int64_t i;
    ds_status s;
    /* every pair takes at least 13 bytes: the key length, the type and a one-byte value */
    if ((uint64_t)g->n_kv > (c->size - c->pos) / 13)
        return ds__fail(DS_ERR_BOUNDS, "gguf: header claims %lld key-value pairs, more than the %llu bytes after it can hold", (long long)g->n_kv, (unsigned long long)(c->size - c->pos));
    g->kv = DS__CAST(ds_gguf_kv *, ds__calloc((size_t)g->n_kv + 1, sizeof(ds_gguf_kv)));
    if (!g->kv) return ds__fail(DS_ERR_NO_MEMORY, "gguf: out of memory for %lld key-value pairs", (long long)g->n_kv);
    if ((s = ds__gguf_index_alloc(&g->kv_index, (uint64_t)g->n_kv))) return s;
    for (i = 0; i < g->n_kv; i++) {
        ds_gguf_kv *kv = &g->kv[i];
        uint64_t at = c->pos;
        int64_t dup;
        snprintf(c->what, sizeof c->what, "key-value pair #%lld", (long long)i);
        if ((s = ds__gguf_read_str(c, "key", &kv->key))) return s;
        ds__gguf_what(c, "key", kv->key);
        if ((s = ds__gguf_read_value(c, kv))) return s;
        dup = ds__gguf_index_find(&g->kv_index, kv->key.ptr, kv->key.len, ds__gguf_kv_key, g);
        if (dup >= 0)
            return ds__fail(DS_ERR_FORMAT, "gguf: %s appears twice (pairs #%lld and #%lld, the second at offset %llu)", c->what, (long long)dup, (long long)i, (unsigned long long)at);
        ds__gguf_index_put(&g->kv_index, kv->key.ptr, kv->key.len, i);
    }
    return DS_OK;
}

static ds_status ds__gguf_read_alignment(ds_gguf *g) {
    const ds_gguf_kv *kv = ds_gguf_find(g, "general.alignment");
    uint32_t a;
    g->alignment = DS__GGUF_DEFAULT_ALIGN;
    if (!kv) return DS_OK;
    if (kv->type != DS_GGUF_U32) return ds__fail(DS_ERR_TYPE, "gguf: key 'general.alignment' has type %s, expected u32", ds_gguf_type_name(kv->type));
    a = ds__gguf_u32(kv->data);
    if (a == 0 || (a & (a - 1))) return ds__fail(DS_ERR_FORMAT, "gguf: key 'general.alignment' is %u, not a power of two", a);
    g->alignment = a;
    return DS_OK;
}

/* n_dims, the shape and the byte size of one tensor */
static ds_status ds__gguf_read_shape(ds__gguf_cur *c, ds_gguf_tensor *t) {
    uint32_t n_dims, d, type;
    int64_t n_elems = 1;
    ds_status s = ds__gguf_read_u32(c, "n_dims", &n_dims);
    if (s) return s;
    if (n_dims > 4) return ds__fail(DS_ERR_FORMAT, "gguf: %s: n_dims %u at offset %llu is more than 4", c->what, n_dims, (unsigned long long)(c->pos - 4));
    t->n_dims = (int)n_dims;
    for (d = 0; d < 4; d++) t->ne[d] = 1;
    for (d = 0; d < n_dims; d++) {
        uint64_t ne;
        if ((s = ds__gguf_read_u64(c, "dimension", &ne))) return s;
        if (ne > (uint64_t)INT64_MAX) return ds__fail(DS_ERR_FORMAT, "gguf: %s: dimension %u is negative (%lld) at offset %llu", c->what, d, (long long)ne, (unsigned long long)(c->pos - 8));
        t->ne[d] = (int64_t)ne;
        if (ne && n_elems > INT64_MAX / (int64_t)ne) return ds__fail(DS_ERR_OVERFLOW, "gguf: %s: element count overflows (dimension %u is %llu)", c->what, d, (unsigned long long)ne);
        n_elems *= (int64_t)ne;
    }
    if ((s = ds__gguf_read_u32(c, "type", &type))) return s;
    if (type >= DS_TYPE_COUNT_ || !ds_type_block_elems((ds_type)type)) return ds__fail(DS_ERR_TYPE, "gguf: %s: unknown tensor type id %u at offset %llu", c->what, type, (unsigned long long)(c->pos - 4));
    t->type = (ds_type)type;
    if (t->ne[0] % (int64_t)ds_type_block_elems(t->type))
        return ds__fail(DS_ERR_FORMAT, "gguf: %s: row of %lld elements is not a whole number of %s blocks of %u", c->what, (long long)t->ne[0], ds_type_name(t->type), (unsigned)ds_type_block_elems(t->type));
    if ((s = ds_type_nbytes(t->type, n_elems, &t->nbytes))) return ds__fail(s, "gguf: %s: %lld %s elements overflow a size", c->what, (long long)n_elems, ds_type_name(t->type));
    return DS_OK;
}

static ds_status ds__gguf_read_tensor_infos(ds_gguf *g, ds__gguf_cur *c) {
    int64_t i;
    ds_status s;
    /* every info takes at least 24 bytes: name length, n_dims, type, offset */
    if ((uint64_t)g->n_tensors > (c->size - c->pos) / 24)
        return ds__fail(DS_ERR_BOUNDS, "gguf: header claims %lld tensors, more than the %llu bytes left at offset %llu can describe", (long long)g->n_tensors,
                        (unsigned long long)(c->size - c->pos), (unsigned long long)c->pos);
    g->tensors = DS__CAST(ds_gguf_tensor *, ds__calloc((size_t)g->n_tensors + 1, sizeof(ds_gguf_tensor)));
    if (!g->tensors) return ds__fail(DS_ERR_NO_MEMORY, "gguf: out of memory for %lld tensors", (long long)g->n_tensors);
    if ((s = ds__gguf_index_alloc(&g->tensor_index, (uint64_t)g->n_tensors))) return s;
    for (i = 0; i < g->n_tensors; i++) {
        ds_gguf_tensor *t = &g->tensors[i];
        int64_t dup;
        snprintf(c->what, sizeof c->what, "tensor #%lld", (long long)i);
        if ((s = ds__gguf_read_str(c, "name", &t->name))) return s;
        ds__gguf_what(c, "tensor", t->name);
        if ((s = ds__gguf_read_shape(c, t))) return s;
        if ((s = ds__gguf_read_u64(c, "offset", &t->offset))) return s;
        if (t->offset % g->alignment)
            return ds__fail(DS_ERR_FORMAT, "gguf: %s: data offset %llu is not a multiple of the alignment %u", c->what, (unsigned long long)t->offset, g->alignment);
        dup = ds__gguf_index_find(&g->tensor_index, t->name.ptr, t->name.len, ds__gguf_tensor_name, g);
        if (dup >= 0) return ds__fail(DS_ERR_FORMAT, "gguf: %s appears twice (tensors #%lld and #%lld)", c->what, (long long)dup, (long long)i);
        ds__gguf_index_put(&g->tensor_index, t->name.ptr, t->name.len, i);
    }
    return DS_OK;
}

/* every tensor's bytes inside the file */
static ds_status ds__gguf_place_tensors(ds_gguf *g) {
    int64_t i;
    for (i = 0; i < g->n_tensors; i++) {
        ds_gguf_tensor *t = &g->tensors[i];
        uint64_t room = g->size > g->data_offset ? g->size - g->data_offset : 0;
        if (t->offset > room || t->nbytes > room - t->offset) {
            int n = t->name.len > DS__GGUF_NAME_SHOWN ? DS__GGUF_NAME_SHOWN : (int)t->name.len;
            uint64_t end = g->data_offset + t->offset, e2 = end + t->nbytes;
            if (end < t->offset || e2 < end)
                return ds__fail(DS_ERR_BOUNDS, "gguf: tensor '%.*s': data offset %llu + %llu bytes overflows, file has %llu bytes", n, t->name.ptr,
                                (unsigned long long)t->offset, (unsigned long long)t->nbytes, (unsigned long long)g->size);
            return ds__fail(DS_ERR_BOUNDS, "gguf: tensor '%.*s': data ends at %llu, file has %llu bytes", n, t->name.ptr, (unsigned long long)e2, (unsigned long long)g->size);
        }
        t->data = g->base + g->data_offset + t->offset;
    }
    return DS_OK;
}

typedef struct ds__gguf_span { uint64_t begin, end; int64_t idx; } ds__gguf_span;
static int ds__gguf_span_cmp(const void *a, const void *b) {
    const ds__gguf_span *x = (const ds__gguf_span *)a, *y = (const ds__gguf_span *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* no two tensors share a byte: sort by offset and compare neighbours (empty tensors own none) */
static ds_status ds__gguf_check_overlap(ds_gguf *g) {
    ds__gguf_span *sp;
    int64_t i, n = 0;
    ds_status s = DS_OK;
    if (g->n_tensors < 2) return DS_OK;
    sp = DS__CAST(ds__gguf_span *, ds__calloc((size_t)g->n_tensors, sizeof *sp));
    if (!sp) return ds__fail(DS_ERR_NO_MEMORY, "gguf: out of memory checking %lld tensors", (long long)g->n_tensors);
    for (i = 0; i < g->n_tensors; i++) {
        if (!g->tensors[i].nbytes) continue;
        sp[n].begin = g->tensors[i].offset;
        sp[n].end = g->tensors[i].offset + g->tensors[i].nbytes;
        sp[n].idx = i;
        n++;
    }
    qsort(sp, (size_t)n, sizeof *sp, ds__gguf_span_cmp);
    for (i = 1; i < n && !s; i++) {
        if (sp[i].begin < sp[i - 1].end) {
            const ds_gguf_tensor *a = &g->tensors[sp[i - 1].idx], *b = &g->tensors[sp[i].idx];
            int na = a->name.len > DS__GGUF_NAME_SHOWN ? DS__GGUF_NAME_SHOWN : (int)a->name.len;
            int nb = b->name.len > DS__GGUF_NAME_SHOWN ? DS__GGUF_NAME_SHOWN : (int)b->name.len;
            s = ds__fail(DS_ERR_FORMAT, "gguf: tensors '%.*s' [%llu, %llu) and '%.*s' [%llu, %llu) overlap", na, a->name.ptr, (unsigned long long)sp[i - 1].begin,
                         (unsigned long long)sp[i - 1].end, nb, b->name.ptr, (unsigned long long)sp[i].begin, (unsigned long long)sp[i].end);
        }
    }
    ds_free(sp);
    return s;
}

static ds_status ds__gguf_read_header(ds_gguf *g, ds__gguf_cur *c) {
    uint64_t nt, nk;
    uint32_t v;
    ds_status s;
    snprintf(c->what, sizeof c->what, "header");
    if ((s = ds__gguf_need(c, 4, "magic"))) return s;
    if (memcmp(c->base, "GGUF", 4) != 0)
        return ds__fail(DS_ERR_FORMAT, "gguf: bad magic %02x %02x %02x %02x (expected 'GGUF')", c->base[0], c->base[1], c->base[2], c->base[3]);
    c->pos = 4;
    if ((s = ds__gguf_read_u32(c, "version", &v))) return s;
    if (v > 0xffff && (v & 0xffff) == 0) return ds__fail(DS_ERR_UNSUPPORTED, "gguf: big-endian file (version reads as 0x%08x); only little-endian GGUF is supported", v);
    if (v == 1) return ds__fail(DS_ERR_UNSUPPORTED, "gguf: version 1 is not supported (only 2 and 3)");
    if (v != 2 && v != 3) return ds__fail(DS_ERR_UNSUPPORTED, "gguf: unknown version %u (only 2 and 3 are supported)", v);
    if ((s = ds__gguf_read_u64(c, "tensor count", &nt)) || (s = ds__gguf_read_u64(c, "key-value count", &nk))) return s;
    if (nt > (uint64_t)INT64_MAX || nk > (uint64_t)INT64_MAX)
        return ds__fail(DS_ERR_BOUNDS, "gguf: header claims %llu tensors and %llu key-value pairs in a file of %llu bytes", (unsigned long long)nt, (unsigned long long)nk, (unsigned long long)c->size);
    g->version = v;
    g->n_tensors = (int64_t)nt;
    g->n_kv = (int64_t)nk;
    return DS_OK;
}

static ds_status ds__gguf_parse(ds_gguf *g) {
    ds__gguf_cur c;
    ds_status s;
    memset(&c, 0, sizeof c);
    c.base = g->base;
    c.size = g->size;
    if ((s = ds__gguf_read_header(g, &c))) return s;
    if ((s = ds__gguf_read_kvs(g, &c))) return s;
    if ((s = ds__gguf_read_alignment(g))) return s;
    if ((s = ds__gguf_read_tensor_infos(g, &c))) return s;
    g->data_offset = c.pos + (g->alignment - c.pos % g->alignment) % g->alignment;
    if ((s = ds__gguf_place_tensors(g))) return s;
    return ds__gguf_check_overlap(g);
}

DS_API ds_status ds_gguf_open_memory(const void *data, size_t size, ds_gguf **out) {
    ds_gguf *g;
    ds_status s;
    if (!out) return ds__fail(DS_ERR_INVALID_ARG, "gguf: NULL out");
    *out = NULL;
    if (!data && size) return ds__fail(DS_ERR_INVALID_ARG, "gguf: NULL data");
    g = DS__CAST(ds_gguf *, ds__calloc(1, sizeof *g));
    if (!g) return ds__fail(DS_ERR_NO_MEMORY, "gguf: out of memory");
    g->base = data ? (const uint8_t *)data : (const uint8_t *)"";
    g->size = size;
    s = ds__gguf_parse(g);
    if (s) {
        ds_gguf_free(g);
        return s;
    }
    *out = g;
    return DS_OK;
}

DS_API ds_status ds_gguf_open(const char *path, ds_gguf **out) {
    ds_mapped_file m;
    ds_status s;
    if (!out || !path) return ds__fail(DS_ERR_INVALID_ARG, "gguf: NULL argument");
    *out = NULL;
    if ((s = ds_map_file(path, &m))) return s;
    if ((s = ds_gguf_open_memory(m.data, m.size, out))) {
        ds_unmap_file(&m);
        return s;
    }
    (*out)->map = m;
    return DS_OK;
}

DS_API void ds_gguf_free(ds_gguf *g) {
    if (!g) return;
    ds__gguf_index_free(&g->kv_index);
    ds__gguf_index_free(&g->tensor_index);
    ds_free(g->kv);
    ds_free(g->tensors);
    ds_unmap_file(&g->map);
    ds_free(g);
}

DS_API uint32_t ds_gguf_version(const ds_gguf *g) { return g->version; }
DS_API uint32_t ds_gguf_alignment(const ds_gguf *g) { return g->alignment; }
DS_API uint64_t ds_gguf_data_offset(const ds_gguf *g) { return g->data_offset; }
DS_API uint64_t ds_gguf_file_size(const ds_gguf *g) { return g->size; }
DS_API int64_t ds_gguf_n_kv(const ds_gguf *g) { return g->n_kv; }
DS_API const ds_gguf_kv *ds_gguf_kv_at(const ds_gguf *g, int64_t i) { return i >= 0 && i < g->n_kv ? &g->kv[i] : NULL; }
DS_API int64_t ds_gguf_n_tensors(const ds_gguf *g) { return g->n_tensors; }
DS_API const ds_gguf_tensor *ds_gguf_tensor_at(const ds_gguf *g, int64_t i) { return i >= 0 && i < g->n_tensors ? &g->tensors[i] : NULL; }

DS_API const ds_gguf_kv *ds_gguf_find(const ds_gguf *g, const char *key) {
    int64_t i;
    if (!g || !key) return NULL;
    i = ds__gguf_index_find(&g->kv_index, key, strlen(key), ds__gguf_kv_key, g);
    return i < 0 ? NULL : &g->kv[i];
}
DS_API const ds_gguf_tensor *ds_gguf_find_tensor(const ds_gguf *g, const char *name) {
    int64_t i;
    if (!g || !name) return NULL;
    i = ds__gguf_index_find(&g->tensor_index, name, strlen(name), ds__gguf_tensor_name, g);
    return i < 0 ? NULL : &g->tensors[i];
}

/* the key's pair, or DS_ERR_NOT_FOUND */
static ds_status ds__gguf_lookup(const ds_gguf *g, const char *key, const ds_gguf_kv **kv) {
    if (!g || !key) return ds__fail(DS_ERR_INVALID_ARG, "gguf: NULL argument");
    *kv = ds_gguf_find(g, key);
    if (!*kv) return ds__fail(DS_ERR_NOT_FOUND, "gguf: no key '%s'", key);
    return DS_OK;
}
static ds_status ds__gguf_wrong_type(const char *key, const ds_gguf_kv *kv, const char *wanted) {
    return ds__fail(DS_ERR_TYPE, "gguf: key '%s' holds %s, not %s", key, ds_gguf_type_name(kv->type), wanted);
}

/* an integer value as sign and magnitude (negative values: mag = -v as unsigned) */
static int ds__gguf_int_value(const ds_gguf_kv *kv, int *neg, uint64_t *mag) {
    int64_t sv;
    const uint8_t *p = kv->data;
    switch (kv->type) {
    case DS_GGUF_U8: *neg = 0; *mag = p[0]; return 1;
    case DS_GGUF_U16: *neg = 0; *mag = (uint64_t)p[0] | (uint64_t)p[1] << 8; return 1;
    case DS_GGUF_U32: *neg = 0; *mag = ds__gguf_u32(p); return 1;
    case DS_GGUF_U64: *neg = 0; *mag = ds__gguf_u64(p); return 1;
    case DS_GGUF_I8: sv = (int8_t)p[0]; break;
    case DS_GGUF_I16: sv = (int16_t)(uint16_t)(p[0] | p[1] << 8); break;
    case DS_GGUF_I32: sv = (int32_t)ds__gguf_u32(p); break;
    case DS_GGUF_I64: sv = (int64_t)ds__gguf_u64(p); break;
    default: return 0;
    }
    *neg = sv < 0;
    *mag = sv < 0 ? (uint64_t)0 - (uint64_t)sv : (uint64_t)sv;
    return 1;
}

/* an integer key whose value lies in [-neg_max, pos_max] */
static ds_status ds__gguf_get_int(const ds_gguf *g, const char *key, uint64_t neg_max, uint64_t pos_max, const char *wanted, int *neg, uint64_t *mag) {
    const ds_gguf_kv *kv;
    ds_status s = ds__gguf_lookup(g, key, &kv);
    if (s) return s;
    if (!ds__gguf_int_value(kv, neg, mag)) return ds__gguf_wrong_type(key, kv, wanted);
    if (*neg ? *mag > neg_max : *mag > pos_max)
        return ds__fail(DS_ERR_TYPE, "gguf: key '%s': value %s%llu does not fit %s", key, *neg ? "-" : "", (unsigned long long)*mag, wanted);
    return DS_OK;
}

DS_API ds_status ds_gguf_get_u32(const ds_gguf *g, const char *key, uint32_t *out) {
    int neg;
    uint64_t m;
    ds_status s = ds__gguf_get_int(g, key, 0, UINT32_MAX, "u32", &neg, &m);
    if (!s && out) *out = (uint32_t)m;
    return s;
}
DS_API ds_status ds_gguf_get_i32(const ds_gguf *g, const char *key, int32_t *out) {
    int neg;
    uint64_t m;
    ds_status s = ds__gguf_get_int(g, key, (uint64_t)INT32_MAX + 1, INT32_MAX, "i32", &neg, &m);
    if (!s && out) *out = neg ? (int32_t)(-(int64_t)m) : (int32_t)m;
    return s;
}
DS_API ds_status ds_gguf_get_u64(const ds_gguf *g, const char *key, uint64_t *out) {
    int neg;
    uint64_t m;
    ds_status s = ds__gguf_get_int(g, key, 0, UINT64_MAX, "u64", &neg, &m);
    if (!s && out) *out = m;
    return s;
}
DS_API ds_status ds_gguf_get_i64(const ds_gguf *g, const char *key, int64_t *out) {
    int neg;
    uint64_t m;
    ds_status s = ds__gguf_get_int(g, key, (uint64_t)INT64_MAX + 1, INT64_MAX, "i64", &neg, &m);
    if (!s && out) *out = neg ? (int64_t)(0 - m) : (int64_t)m;
    return s;
}

DS_API ds_status ds_gguf_get_f64(const ds_gguf *g, const char *key, double *out) {
    const ds_gguf_kv *kv;
    ds_status s = ds__gguf_lookup(g, key, &kv);
    if (s) return s;
    if (kv->type == DS_GGUF_F32) {
        uint32_t u = ds__gguf_u32(kv->data);
        float f;
        memcpy(&f, &u, 4);
        if (out) *out = f;
    } else if (kv->type == DS_GGUF_F64) {
        uint64_t u = ds__gguf_u64(kv->data);
        double d;
        memcpy(&d, &u, 8);
        if (out) *out = d;
    } else {
        return ds__gguf_wrong_type(key, kv, "f32 or f64");
    }
    return DS_OK;
}
DS_API ds_status ds_gguf_get_f32(const ds_gguf *g, const char *key, float *out) {
    double d = 0;
    ds_status s = ds_gguf_get_f64(g, key, &d);
    if (!s && out) *out = (float)d;
    return s;
}

DS_API ds_status ds_gguf_get_bool(const ds_gguf *g, const char *key, int *out) {
    const ds_gguf_kv *kv;
    ds_status s = ds__gguf_lookup(g, key, &kv);
    if (s) return s;
    if (kv->type != DS_GGUF_BOOL) return ds__gguf_wrong_type(key, kv, "bool");
    if (out) *out = kv->data[0];
    return DS_OK;
}

/* the string encoded at p (validated when the file was opened) */
static ds_str ds__gguf_str_at(const uint8_t *p) {
    ds_str r;
    r.len = (size_t)ds__gguf_u64(p);
    r.ptr = (const char *)(p + 8);
    return r;
}

DS_API ds_status ds_gguf_get_str(const ds_gguf *g, const char *key, ds_str *out) {
    const ds_gguf_kv *kv;
    ds_status s = ds__gguf_lookup(g, key, &kv);
    if (s) return s;
    if (kv->type != DS_GGUF_STRING) return ds__gguf_wrong_type(key, kv, "string");
    if (out) *out = ds__gguf_str_at(kv->data);
    return DS_OK;
}

DS_API ds_status ds_gguf_get_arr(const ds_gguf *g, const char *key, ds_gguf_type *elem, uint64_t *n, const void **data) {
    const ds_gguf_kv *kv;
    ds_status s = ds__gguf_lookup(g, key, &kv);
    if (s) return s;
    if (kv->type != DS_GGUF_ARRAY) return ds__gguf_wrong_type(key, kv, "array");
    if (elem) *elem = kv->arr_type;
    if (n) *n = kv->arr_len;
    if (data) *data = kv->data;
    return DS_OK;
}

DS_API ds_status ds_gguf_get_arr_str(const ds_gguf *g, const char *key, ds_str *out, uint64_t n) {
    const ds_gguf_kv *kv;
    const uint8_t *p;
    uint64_t i;
    ds_status s = ds__gguf_lookup(g, key, &kv);
    if (s) return s;
    if (kv->type != DS_GGUF_ARRAY || kv->arr_type != DS_GGUF_STRING) return ds__gguf_wrong_type(key, kv, "array of strings");
    if (n != kv->arr_len || (n && !out))
        return ds__fail(DS_ERR_INVALID_ARG, "gguf: key '%s' has %llu strings, caller asked for %llu", key, (unsigned long long)kv->arr_len, (unsigned long long)n);
    for (p = kv->data, i = 0; i < n; i++) {
        out[i] = ds__gguf_str_at(p);
        p += 8 + out[i].len;
    }
    return DS_OK;
}

/* ---- writer ---------------------------------------------------------------------------- */
/* A KV holds its value already encoded as it goes after the type id in the file. */
typedef struct ds__gguf_wkv {
    char *key;
    size_t key_len;
    ds_gguf_type type;
    uint8_t *val;
    size_t len;
} ds__gguf_wkv;
typedef struct ds__gguf_wtensor {
    char *name;
    size_t name_len;
    ds_type type;
    int n_dims;
    int64_t ne[4];
    const void *data;
    uint64_t nbytes, offset;
} ds__gguf_wtensor;
struct ds_gguf_writer {
    ds__gguf_wkv *kv;
    size_t n_kv, cap_kv;
    ds__gguf_wtensor *t;
    size_t n_t, cap_t;
    ds__gguf_index kv_index, t_index;
    int checksum;   /* add DS_GGUF_CHECKSUM_KEY when writing */
};
#define DS__GGUF_MAX_NAME 63   /* longest tensor name llama.cpp accepts */

static ds_str ds__gguf_wkv_key(const void *w, int64_t i) {
    const ds__gguf_wkv *kv = &((const ds_gguf_writer *)w)->kv[i];
    ds_str s;
    s.ptr = kv->key;
    s.len = kv->key_len;
    return s;
}
static ds_str ds__gguf_wtensor_name(const void *w, int64_t i) {
    const ds__gguf_wtensor *t = &((const ds_gguf_writer *)w)->t[i];
    ds_str s;
    s.ptr = t->name;
    s.len = t->name_len;
    return s;
}

/* p (n items of elem bytes, capacity *cap) with room for one more: p itself or a larger copy;
   NULL when out of memory (p is then untouched) */
static void *ds__gguf_grow(void *p, size_t *cap, size_t n, size_t elem) {
    size_t nc = *cap ? *cap * 2 : 16;
    void *np;
    if (n < *cap) return p;
    np = ds__calloc(nc, elem);
    if (!np) return NULL;
    if (p) memcpy(np, p, n * elem);
    ds_free(p);
    *cap = nc;
    return np;
}

/* makes room in a name index for one more of n items, rebuilding it larger when half full */
static ds_status ds__gguf_index_reserve(ds__gguf_index *ix, size_t n, ds__gguf_key_fn key_at, const void *owner) {
    ds__gguf_index nix;
    size_t i;
    ds_status s;
    if (ix->slot && (uint64_t)(n + 1) * 2 <= ix->mask + 1) return DS_OK;
    if ((s = ds__gguf_index_alloc(&nix, (uint64_t)(n + 1) * 2))) return s;
    for (i = 0; i < n; i++) {
        ds_str k = key_at(owner, (int64_t)i);
        ds__gguf_index_put(&nix, k.ptr, k.len, (int64_t)i);
    }
    ds__gguf_index_free(ix);
    *ix = nix;
    return DS_OK;
}

DS_API ds_status ds_gguf_writer_create(ds_gguf_writer **out) {
    if (!out) return ds__fail(DS_ERR_INVALID_ARG, "gguf writer: NULL out");
    *out = DS__CAST(ds_gguf_writer *, ds__calloc(1, sizeof **out));
    return *out ? DS_OK : ds__fail(DS_ERR_NO_MEMORY, "gguf writer: out of memory");
}

DS_API void ds_gguf_writer_free(ds_gguf_writer *w) {
    size_t i;
    if (!w) return;
    for (i = 0; i < w->n_kv; i++) {
        ds_free(w->kv[i].key);
        ds_free(w->kv[i].val);
    }
    for (i = 0; i < w->n_t; i++) ds_free(w->t[i].name);
    ds_free(w->kv);
    ds_free(w->t);
    ds__gguf_index_free(&w->kv_index);
    ds__gguf_index_free(&w->t_index);
    ds_free(w);
}

/* sets key (key_len bytes) to an encoded value of len bytes, copying both */
static ds_status ds__gguf_writer_put(ds_gguf_writer *w, const char *key, size_t key_len, ds_gguf_type type, const uint8_t *val, size_t len) {
    uint8_t *v;
    int64_t i;
    ds_status s;
    v = DS__CAST(uint8_t *, ds_alloc(len));
    if (!v) return ds__fail(DS_ERR_NO_MEMORY, "gguf writer: out of memory for key '%.*s' (%zu bytes)", (int)DS__MIN(key_len, 96), key, len);
    if (len) memcpy(v, val, len);
    i = ds__gguf_index_find(&w->kv_index, key, key_len, ds__gguf_wkv_key, w);
    if (i >= 0) {   /* replace, keeping its place */
        ds_free(w->kv[i].val);
        w->kv[i].type = type;
        w->kv[i].val = v;
        w->kv[i].len = len;
        return DS_OK;
    }
    if ((s = ds__gguf_index_reserve(&w->kv_index, w->n_kv, ds__gguf_wkv_key, w))) {
        ds_free(v);
        return s;
    }
    {
        ds__gguf_wkv *kv = DS__CAST(ds__gguf_wkv *, ds__gguf_grow(w->kv, &w->cap_kv, w->n_kv, sizeof *w->kv));
        if (!kv) {
            ds_free(v);
            return ds__fail(DS_ERR_NO_MEMORY, "gguf writer: out of memory");
        }
        w->kv = kv;
        kv += w->n_kv;
        kv->key = DS__CAST(char *, ds_alloc(key_len + 1));
        if (!kv->key) {
            ds_free(v);
            return ds__fail(DS_ERR_NO_MEMORY, "gguf writer: out of memory");
        }
        memcpy(kv->key, key, key_len);
        kv->key[key_len] = 0;
        kv->key_len = key_len;
        kv->type = type;
        kv->val = v;
        kv->len = len;
    }
    ds__gguf_index_put(&w->kv_index, key, key_len, (int64_t)w->n_kv);
    w->n_kv++;
    return DS_OK;
}

static void ds__gguf_enc32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}
static void ds__gguf_enc64(uint8_t *p, uint64_t v) {
    ds__gguf_enc32(p, (uint32_t)v);
    ds__gguf_enc32(p + 4, (uint32_t)(v >> 32));
}

static ds_status ds__gguf_writer_check(const ds_gguf_writer *w, const char *key) {
    if (!w || !key) return ds__fail(DS_ERR_INVALID_ARG, "gguf writer: NULL argument");
    return DS_OK;
}

DS_API ds_status ds_gguf_writer_set_scalar(ds_gguf_writer *w, const char *key, ds_gguf_type type, const void *value) {
    size_t n = ds__gguf_scalar_size((uint32_t)type);
    uint8_t v[8];
    ds_status s = ds__gguf_writer_check(w, key);
    if (s) return s;
    if (!n || !value) return ds__fail(DS_ERR_INVALID_ARG, "gguf writer: key '%s': %s is not a scalar type", key, ds_gguf_type_name(type));
    memcpy(v, value, n);
    if (type == DS_GGUF_BOOL) v[0] = v[0] != 0;
    return ds__gguf_writer_put(w, key, strlen(key), type, v, n);
}
/* a scalar of `type` from its bits: 8 bytes little-endian, of which set_scalar keeps the type's size */
static ds_status ds__gguf_writer_set_bits(ds_gguf_writer *w, const char *key, ds_gguf_type type, uint64_t bits) {
    uint8_t b[8];
    ds__gguf_enc64(b, bits);
    return ds_gguf_writer_set_scalar(w, key, type, b);
}
DS_API ds_status ds_gguf_writer_set_u32(ds_gguf_writer *w, const char *key, uint32_t v) { return ds__gguf_writer_set_bits(w, key, DS_GGUF_U32, v); }
DS_API ds_status ds_gguf_writer_set_i32(ds_gguf_writer *w, const char *key, int32_t v) { return ds__gguf_writer_set_bits(w, key, DS_GGUF_I32, (uint32_t)v); }
DS_API ds_status ds_gguf_writer_set_u64(ds_gguf_writer *w, const char *key, uint64_t v) { return ds__gguf_writer_set_bits(w, key, DS_GGUF_U64, v); }
DS_API ds_status ds_gguf_writer_set_i64(ds_gguf_writer *w, const char *key, int64_t v) { return ds__gguf_writer_set_bits(w, key, DS_GGUF_I64, (uint64_t)v); }
DS_API ds_status ds_gguf_writer_set_f32(ds_gguf_writer *w, const char *key, float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    return ds__gguf_writer_set_bits(w, key, DS_GGUF_F32, u);
}
DS_API ds_status ds_gguf_writer_set_f64(ds_gguf_writer *w, const char *key, double v) {
    uint64_t u;
    memcpy(&u, &v, 8);
    return ds__gguf_writer_set_bits(w, key, DS_GGUF_F64, u);
}
DS_API ds_status ds_gguf_writer_set_bool(ds_gguf_writer *w, const char *key, int v) { return ds__gguf_writer_set_bits(w, key, DS_GGUF_BOOL, v != 0); }

DS_API ds_status ds_gguf_writer_set_str(ds_gguf_writer *w, const char *key, const char *v) {
    size_t n;
    uint8_t *buf;
    ds_status s = ds__gguf_writer_check(w, key);
    if (s) return s;
    if (!v) return ds__fail(DS_ERR_INVALID_ARG, "gguf writer: key '%s': NULL string", key);
    n = strlen(v);
    buf = DS__CAST(uint8_t *, ds_alloc(n + 8));
    if (!buf) return ds__fail(DS_ERR_NO_MEMORY, "gguf writer: out of memory for key '%s'", key);
    ds__gguf_enc64(buf, n);
    memcpy(buf + 8, v, n);
    s = ds__gguf_writer_put(w, key, strlen(key), DS_GGUF_STRING, buf, n + 8);
    ds_free(buf);
    return s;
}

DS_API ds_status ds_gguf_writer_set_arr(ds_gguf_writer *w, const char *key, ds_gguf_type elem, const void *data, uint64_t n) {
    size_t esize = ds__gguf_scalar_size((uint32_t)elem), bytes, i;
    uint8_t *buf;
    ds_status s = ds__gguf_writer_check(w, key);
    if (s) return s;
    if (!esize) return ds__fail(DS_ERR_INVALID_ARG, "gguf writer: key '%s': %s arrays need ds_gguf_writer_set_arr_str or are not supported", key, ds_gguf_type_name(elem));
    if (n && !data) return ds__fail(DS_ERR_INVALID_ARG, "gguf writer: key '%s': NULL data", key);
    if (n > (SIZE_MAX - 12) / esize) return ds__fail(DS_ERR_OVERFLOW, "gguf writer: key '%s': %llu elements overflow a size", key, (unsigned long long)n);
    bytes = (size_t)n * esize;
    buf = DS__CAST(uint8_t *, ds_alloc(bytes + 12));
    if (!buf) return ds__fail(DS_ERR_NO_MEMORY, "gguf writer: out of memory for key '%s' (%zu bytes)", key, bytes);
    ds__gguf_enc32(buf, (uint32_t)elem);
    ds__gguf_enc64(buf + 4, n);
    if (bytes) memcpy(buf + 12, data, bytes);
    if (elem == DS_GGUF_BOOL)
        for (i = 0; i < bytes; i++) buf[12 + i] = buf[12 + i] != 0;
    s = ds__gguf_writer_put(w, key, strlen(key), DS_GGUF_ARRAY, buf, bytes + 12);
    ds_free(buf);
    return s;
}

DS_API ds_status ds_gguf_writer_set_arr_str(ds_gguf_writer *w, const char *key, const char *const *strs, uint64_t n) {
    size_t bytes = 12, i, at;
    uint8_t *buf;
    ds_status s = ds__gguf_writer_check(w, key);
    if (s) return s;
    if (n && !strs) return ds__fail(DS_ERR_INVALID_ARG, "gguf writer: key '%s': NULL strings", key);
    if (n > SIZE_MAX / 8) return ds__fail(DS_ERR_OVERFLOW, "gguf writer: key '%s': %llu strings overflow a size", key, (unsigned long long)n);
    for (i = 0; i < (size_t)n; i++) {
        size_t len;
        if (!strs[i]) return ds__fail(DS_ERR_INVALID_ARG, "gguf writer: key '%s': string %zu is NULL", key, i);
        len = strlen(strs[i]);
        if (len > SIZE_MAX - 8 - bytes) return ds__fail(DS_ERR_OVERFLOW, "gguf writer: key '%s': strings overflow a size", key);
        bytes += 8 + len;
    }
    buf = DS__CAST(uint8_t *, ds_alloc(bytes));
    if (!buf) return ds__fail(DS_ERR_NO_MEMORY, "gguf writer: out of memory for key '%s' (%zu bytes)", key, bytes);
    ds__gguf_enc32(buf, DS_GGUF_STRING);
    ds__gguf_enc64(buf + 4, n);
    for (at = 12, i = 0; i < (size_t)n; i++) {
        size_t len = strlen(strs[i]);
        ds__gguf_enc64(buf + at, len);
        memcpy(buf + at + 8, strs[i], len);
        at += 8 + len;
    }
    s = ds__gguf_writer_put(w, key, strlen(key), DS_GGUF_ARRAY, buf, bytes);
    ds_free(buf);
    return s;
}

/* where a read KV's encoded value starts (after its type id) and how many bytes it spans */
static const uint8_t *ds__gguf_kv_encoded(const ds_gguf_kv *kv, size_t *len) {
    if (kv->type == DS_GGUF_STRING) {
        *len = 8 + ds__gguf_str_at(kv->data).len;
        return kv->data;
    }
    if (kv->type != DS_GGUF_ARRAY) {
        *len = ds__gguf_scalar_size(kv->type);
        return kv->data;
    }
    if (kv->arr_type == DS_GGUF_STRING) {
        const uint8_t *p = kv->data;
        uint64_t i;
        for (i = 0; i < kv->arr_len; i++) p += 8 + ds__gguf_str_at(p).len;
        *len = (size_t)(p - kv->data) + 12;
    } else {
        *len = (size_t)kv->arr_len * ds__gguf_scalar_size(kv->arr_type) + 12;
    }
    return kv->data - 12;
}

DS_API ds_status ds_gguf_writer_copy_kv(ds_gguf_writer *w, const ds_gguf *g) {
    int64_t i;
    if (!w || !g) return ds__fail(DS_ERR_INVALID_ARG, "gguf writer: NULL argument");
    for (i = 0; i < g->n_kv; i++) {
        const ds_gguf_kv *kv = &g->kv[i];
        size_t len;
        const uint8_t *val = ds__gguf_kv_encoded(kv, &len);
        ds_status s = ds__gguf_writer_put(w, kv->key.ptr, kv->key.len, kv->type, val, len);
        if (s) return s;
    }
    return DS_OK;
}

/* the element count of a shape, checked */
static ds_status ds__gguf_shape_elems(const char *name, int n_dims, const int64_t *ne, int64_t *out) {
    int d;
    int64_t n = 1;
    if (n_dims < 1 || n_dims > 4 || !ne) return ds__fail(DS_ERR_INVALID_ARG, "gguf writer: tensor '%s': n_dims %d is not 1..4", name, n_dims);
    for (d = 0; d < n_dims; d++) {
        if (ne[d] < 0) return ds__fail(DS_ERR_INVALID_ARG, "gguf writer: tensor '%s': dimension %d is negative", name, d);
        if (ne[d] && n > INT64_MAX / ne[d]) return ds__fail(DS_ERR_OVERFLOW, "gguf writer: tensor '%s': element count overflows", name);
        n *= ne[d];
    }
    *out = n;
    return DS_OK;
}

DS_API ds_status ds_gguf_writer_add_tensor(ds_gguf_writer *w, const char *name, ds_type type, int n_dims, const int64_t *ne, const void *data) {
    ds__gguf_wtensor *t;
    int64_t n_elems = 0;
    uint64_t nbytes = 0;
    size_t len;
    int d;
    ds_status s;
    if (!w || !name) return ds__fail(DS_ERR_INVALID_ARG, "gguf writer: NULL argument");
    len = strlen(name);
    if (len > DS__GGUF_MAX_NAME) return ds__fail(DS_ERR_INVALID_ARG, "gguf writer: tensor '%.64s...': name longer than %d bytes", name, DS__GGUF_MAX_NAME);
    if ((unsigned)type >= DS_TYPE_COUNT_ || !ds_type_block_elems(type)) return ds__fail(DS_ERR_TYPE, "gguf writer: tensor '%s': unknown type id %d", name, (int)type);
    if ((s = ds__gguf_shape_elems(name, n_dims, ne, &n_elems))) return s;
    if (ne[0] % (int64_t)ds_type_block_elems(type))
        return ds__fail(DS_ERR_INVALID_ARG, "gguf writer: tensor '%s': row of %lld elements is not whole %s blocks", name, (long long)ne[0], ds_type_name(type));
    if ((s = ds_type_nbytes(type, n_elems, &nbytes))) return s;
    if (nbytes && !data) return ds__fail(DS_ERR_INVALID_ARG, "gguf writer: tensor '%s': NULL data", name);
    if (ds__gguf_index_find(&w->t_index, name, len, ds__gguf_wtensor_name, w) >= 0) return ds__fail(DS_ERR_INVALID_ARG, "gguf writer: tensor '%s' added twice", name);
    if ((s = ds__gguf_index_reserve(&w->t_index, w->n_t, ds__gguf_wtensor_name, w))) return s;
    t = DS__CAST(ds__gguf_wtensor *, ds__gguf_grow(w->t, &w->cap_t, w->n_t, sizeof *w->t));
    if (!t) return ds__fail(DS_ERR_NO_MEMORY, "gguf writer: out of memory");
    w->t = t;
    t += w->n_t;
    memset(t, 0, sizeof *t);
    if (!(t->name = ds__strdup(name))) return ds__fail(DS_ERR_NO_MEMORY, "gguf writer: out of memory");
    t->name_len = len;
    t->type = type;
    t->n_dims = n_dims;
    for (d = 0; d < 4; d++) t->ne[d] = d < n_dims ? ne[d] : 1;
    t->data = data;
    t->nbytes = nbytes;
    ds__gguf_index_put(&w->t_index, name, len, (int64_t)w->n_t);
    w->n_t++;
    return DS_OK;
}

/* ---- writing the file: a FILE with a sticky error flag ---- */
typedef struct ds__gguf_out {
    FILE *f;
    uint64_t pos;
    int failed;
} ds__gguf_out;

static void ds__gguf_emit(ds__gguf_out *o, const void *p, uint64_t n) {
    const uint8_t *b = (const uint8_t *)p;
    while (n && !o->failed) {   /* chunks, so sizes beyond size_t on 32-bit hosts still work */
        size_t k = (size_t)DS__MIN(n, (uint64_t)1 << 30);
        if (fwrite(b, 1, k, o->f) != k) o->failed = 1;
        b += k;
        n -= k;
        o->pos += k;
    }
}
static void ds__gguf_emit32(ds__gguf_out *o, uint32_t v) {
    uint8_t b[4];
    ds__gguf_enc32(b, v);
    ds__gguf_emit(o, b, 4);
}
static void ds__gguf_emit64(ds__gguf_out *o, uint64_t v) {
    uint8_t b[8];
    ds__gguf_enc64(b, v);
    ds__gguf_emit(o, b, 8);
}
static void ds__gguf_emit_str(ds__gguf_out *o, const char *s, size_t n) {
    ds__gguf_emit64(o, n);
    ds__gguf_emit(o, s, n);
}
static void ds__gguf_pad(ds__gguf_out *o, uint32_t align) {
    static const uint8_t zeros[64] = {0};
    while (o->pos % align) ds__gguf_emit(o, zeros, DS__MIN(align - o->pos % align, (uint64_t)sizeof zeros));
}

/* general.alignment as the writer will apply it */
static ds_status ds__gguf_writer_alignment(const ds_gguf_writer *w, uint32_t *align) {
    int64_t i = ds__gguf_index_find(&w->kv_index, "general.alignment", 17, ds__gguf_wkv_key, w);
    *align = DS__GGUF_DEFAULT_ALIGN;
    if (i < 0) return DS_OK;
    if (w->kv[i].type != DS_GGUF_U32) return ds__fail(DS_ERR_INVALID_ARG, "gguf writer: general.alignment must be a u32, not %s", ds_gguf_type_name(w->kv[i].type));
    *align = ds__gguf_u32(w->kv[i].val);
    if (*align == 0 || (*align & (*align - 1))) return ds__fail(DS_ERR_INVALID_ARG, "gguf writer: general.alignment %u is not a power of two", *align);
    return DS_OK;
}

static void ds__gguf_writer_emit(ds_gguf_writer *w, ds__gguf_out *o, uint32_t align) {
    size_t i;
    uint64_t off = 0;
    int d;
    ds__gguf_emit(o, "GGUF", 4);
    ds__gguf_emit32(o, 3);
    ds__gguf_emit64(o, w->n_t);
    ds__gguf_emit64(o, w->n_kv);
    for (i = 0; i < w->n_kv; i++) {
        ds__gguf_emit_str(o, w->kv[i].key, w->kv[i].key_len);
        ds__gguf_emit32(o, (uint32_t)w->kv[i].type);
        ds__gguf_emit(o, w->kv[i].val, w->kv[i].len);
    }
    for (i = 0; i < w->n_t; i++) {
        ds__gguf_wtensor *t = &w->t[i];
        ds__gguf_emit_str(o, t->name, t->name_len);
        ds__gguf_emit32(o, (uint32_t)t->n_dims);
        for (d = 0; d < t->n_dims; d++) ds__gguf_emit64(o, (uint64_t)t->ne[d]);
        ds__gguf_emit32(o, (uint32_t)t->type);
        ds__gguf_emit64(o, off);
        t->offset = off;
        off += t->nbytes + (align - t->nbytes % align) % align;
    }
    ds__gguf_pad(o, align);
    for (i = 0; i < w->n_t; i++) {
        ds__gguf_emit(o, w->t[i].data, w->t[i].nbytes);
        ds__gguf_pad(o, align);
    }
}

/* makes a finished file durable: its bytes, then (after the rename) its folder entry */
static int ds__gguf_sync_file(FILE *f) {
    if (fflush(f) != 0) return 0;
#if defined(_WIN32)
    return 1;
#else
    return fsync(fileno(f)) == 0;
#endif
}
static void ds__gguf_sync_dir(const char *path) {
#if !defined(_WIN32)
    char dir[4096];
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 0;
    int fd;
    if (n >= sizeof dir) return;
    if (slash) {
        memcpy(dir, path, n ? n : 1);
        dir[n ? n : 1] = 0;
    } else {
        strcpy(dir, ".");
    }
    fd = open(dir, O_RDONLY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
#else
    (void)path;
#endif
}
static int ds__gguf_replace(const char *from, const char *to) {
#if defined(_WIN32)
    return MoveFileExA(from, to, MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH) != 0;
#else
    return rename(from, to) == 0;
#endif
}

DS_API void ds_gguf_writer_set_checksum(ds_gguf_writer *w, int on) {
    if (w) w->checksum = on != 0;
}

/* XXH64 of the data section ds__gguf_writer_emit will write: each tensor, zero-padded */
static uint64_t ds__gguf_writer_data_hash(const ds_gguf_writer *w, uint32_t align) {
    static const uint8_t zeros[64] = {0};
    ds__xxh64 h;
    size_t i;
    ds__xxh64_init(&h, 0);
    for (i = 0; i < w->n_t; i++) {
        const uint8_t *p = DS__CAST(const uint8_t *, w->t[i].data);
        uint64_t left = w->t[i].nbytes, pad = (align - left % align) % align;
        while (left) {   /* size_t pieces, as ds__gguf_emit does */
            size_t k = (size_t)DS__MIN(left, (uint64_t)1 << 30);
            ds__xxh64_update(&h, p, k);
            p += k;
            left -= k;
        }
        for (; pad; pad -= DS__MIN(pad, (uint64_t)sizeof zeros)) ds__xxh64_update(&h, zeros, (size_t)DS__MIN(pad, (uint64_t)sizeof zeros));
    }
    return ds__xxh64_digest(&h);
}

DS_API ds_status ds_gguf_verify_checksum(const ds_gguf *g, int *present) {
    uint64_t want, got, n;
    if (present) *present = 0;
    if (!g) return ds__fail(DS_ERR_INVALID_ARG, "gguf: verify_checksum: NULL argument");
    if (!ds_gguf_find(g, DS_GGUF_CHECKSUM_KEY)) return DS_OK;
    if (ds_gguf_get_u64(g, DS_GGUF_CHECKSUM_KEY, &want) != DS_OK) return ds__fail(DS_ERR_FORMAT, "gguf: key '%s' is not a u64", DS_GGUF_CHECKSUM_KEY);
    if (present) *present = 1;
    n = g->size > g->data_offset ? g->size - g->data_offset : 0;
    got = ds_xxh64(n ? g->base + g->data_offset : NULL, (size_t)n, 0);
    if (got != want)
        return ds__fail(DS_ERR_FORMAT, "gguf: the data section (%llu bytes) hashes to %016llx, the file says %016llx: the file was damaged after it was written",
                        (unsigned long long)n, (unsigned long long)got, (unsigned long long)want);
    return DS_OK;
}

/* Writes path atomically: emit(o, ctx) fills PATH.tmp, which is synced and renamed over path;
   on failure path is untouched and PATH.tmp removed. `what` names the writer in messages. */
typedef void (*ds__emit_fn)(ds__gguf_out *o, void *ctx);
static ds_status ds__write_atomic(const char *path, const char *what, ds__emit_fn emit, void *ctx) {
    ds__gguf_out o;
    size_t n = strlen(path);
    char *tmp;
    ds_status s = DS_OK;
    int ok;
    tmp = DS__CAST(char *, ds_alloc(n + 5));
    if (!tmp) return ds__fail(DS_ERR_NO_MEMORY, "%s: out of memory", what);
    memcpy(tmp, path, n);
    memcpy(tmp + n, ".tmp", 5);
    memset(&o, 0, sizeof o);
    o.f = fopen(tmp, "wb");
    if (!o.f) {
        s = ds__fail(DS_ERR_IO, "%s: cannot create '%s': %s", what, tmp, strerror(errno));
        ds_free(tmp);
        return s;
    }
    emit(&o, ctx);
    ok = !o.failed && ds__gguf_sync_file(o.f);
    ok = fclose(o.f) == 0 && ok;
    if (!ok) {
        s = ds__fail(DS_ERR_IO, "%s: writing '%s' failed at byte %llu: %s", what, tmp, (unsigned long long)o.pos, strerror(errno));
        remove(tmp);
    } else if (!ds__gguf_replace(tmp, path)) {
        s = ds__fail(DS_ERR_IO, "%s: cannot rename '%s' to '%s': %s", what, tmp, path, strerror(errno));
        remove(tmp);
    } else {
        ds__gguf_sync_dir(path);
    }
    ds_free(tmp);
    return s;
}

typedef struct ds__gguf_emit_job { ds_gguf_writer *w; uint32_t align; } ds__gguf_emit_job;
static void ds__gguf_writer_emit_cb(ds__gguf_out *o, void *ctx) {
    ds__gguf_emit_job *j = DS__CAST(ds__gguf_emit_job *, ctx);
    ds__gguf_writer_emit(j->w, o, j->align);
}

DS_API ds_status ds_gguf_writer_write(ds_gguf_writer *w, const char *path) {
    ds__gguf_emit_job j;
    ds_status s;
    if (!w || !path) return ds__fail(DS_ERR_INVALID_ARG, "gguf writer: NULL argument");
    if ((s = ds__gguf_writer_alignment(w, &j.align))) return s;
    if (w->checksum && (s = ds_gguf_writer_set_u64(w, DS_GGUF_CHECKSUM_KEY, ds__gguf_writer_data_hash(w, j.align))) != DS_OK) return s;
    j.w = w;
    return ds__write_atomic(path, "gguf writer", ds__gguf_writer_emit_cb, &j);
}

// >>safetensors
/* ---- safetensors read (validating) and write ------------------------------------------------ */
#define DS__ST_MAX_HEADER ((uint64_t)100 << 20)   /* the format's own bound on the JSON header */

static const struct { const char *name; int size; ds_type type; } ds__st_dtypes[] = {
    {"F32", 4, DS_TYPE_F32}, {"F16", 2, DS_TYPE_F16}, {"BF16", 2, DS_TYPE_BF16}, {"F64", 8, DS_TYPE_COUNT_},
    {"I64", 8, DS_TYPE_COUNT_}, {"I32", 4, DS_TYPE_COUNT_}, {"I16", 2, DS_TYPE_COUNT_}, {"I8", 1, DS_TYPE_COUNT_},
    {"U64", 8, DS_TYPE_COUNT_}, {"U32", 4, DS_TYPE_COUNT_}, {"U16", 2, DS_TYPE_COUNT_}, {"U8", 1, DS_TYPE_COUNT_},
    {"BOOL", 1, DS_TYPE_COUNT_}, {"F8_E4M3", 1, DS_TYPE_COUNT_}, {"F8_E5M2", 1, DS_TYPE_COUNT_}};
#define DS__ST_N_DTYPES ((int)(sizeof ds__st_dtypes / sizeof ds__st_dtypes[0]))

struct ds_safetensors {
    ds_mapped_file map;        /* when opened from a path */
    const uint8_t *data;       /* the data section */
    uint64_t data_size;
    ds_st_tensor *t;           /* sorted by name */
    int64_t n;
    char *strs;                /* every name, metadata key and value, NUL-terminated */
    const char **meta;         /* (n_meta, 2) key, value */
    int64_t n_meta;
    char what[160];            /* the file, for messages */
};

DS_API void ds_safetensors_free(ds_safetensors *st) {
    if (!st) return;
    ds_unmap_file(&st->map);
    ds_free(st->t);
    ds_free(st->strs);
    ds_free(st->meta);
    ds_free(st);
}

/* a JSON number that is a whole number in [0, 2^53] */
static int ds__st_uint(const ds__json *d, uint32_t i, uint64_t *out) {
    double v = d->nodes[i].num;
    if (d->nodes[i].type != DS__JSON_NUMBER || !(v >= 0) || v > 9007199254740992.0 || v != floor(v)) return 0;
    *out = (uint64_t)v;
    return 1;
}

/* string node i copied to *p (NUL-terminated), advancing *p */
static const char *ds__st_copy(const ds__json *d, uint32_t i, char **p) {
    char *s = *p;
    size_t n = ds__json_str(d, i, s);
    s[n] = 0;
    *p = s + n + 1;
    return s;
}

static int ds__st_by_name(const void *a, const void *b) {
    return strcmp(DS__CAST(const ds_st_tensor *, a)->name, DS__CAST(const ds_st_tensor *, b)->name);
}
static int ds__st_by_offset(const void *a, const void *b) {
    const ds_st_tensor *x = DS__CAST(const ds_st_tensor *, a), *y = DS__CAST(const ds_st_tensor *, b);
    return x->data < y->data ? -1 : x->data > y->data;
}

/* one tensor entry: value node v of member name */
static ds_status ds__st_entry(ds_safetensors *st, const ds__json *d, uint32_t v, ds_st_tensor *t) {
    uint32_t dt = ds__json_get(d, v, "dtype"), sh = ds__json_get(d, v, "shape"), off = ds__json_get(d, v, "data_offsets"), e;
    uint64_t begin, end, n = 1, dim, size;
    int k;
    if (d->nodes[v].type != DS__JSON_OBJECT || !dt || !sh || !off || d->nodes[dt].type != DS__JSON_STRING ||
        d->nodes[sh].type != DS__JSON_ARRAY || d->nodes[off].type != DS__JSON_ARRAY || d->nodes[off].n != 2)
        return ds__fail(DS_ERR_FORMAT, "%s: tensor '%s': needs \"dtype\", \"shape\" and two \"data_offsets\"", st->what, t->name);
    for (k = 0; k < DS__ST_N_DTYPES; k++)
        if (ds__json_str_eq(d, dt, ds__st_dtypes[k].name)) break;
    if (k == DS__ST_N_DTYPES) return ds__fail(DS_ERR_UNSUPPORTED, "%s: tensor '%s': unknown dtype", st->what, t->name);
    t->dtype = ds__st_dtypes[k].name;
    t->type = ds__st_dtypes[k].type;
    size = (uint64_t)ds__st_dtypes[k].size;
    if (d->nodes[sh].n > 8) return ds__fail(DS_ERR_UNSUPPORTED, "%s: tensor '%s': %u dims (at most 8)", st->what, t->name, d->nodes[sh].n);
    t->n_dims = (int)d->nodes[sh].n;
    for (k = 0, e = d->nodes[sh].first; e; e = d->nodes[e].next, k++) {
        if (!ds__st_uint(d, e, &dim) || dim > (uint64_t)INT64_MAX) return ds__fail(DS_ERR_FORMAT, "%s: tensor '%s': shape[%d] is not a non-negative integer", st->what, t->name, k);
        t->shape[k] = (int64_t)dim;
        if (dim && n > UINT64_MAX / dim) return ds__fail(DS_ERR_OVERFLOW, "%s: tensor '%s': its element count overflows", st->what, t->name);
        n *= dim;
    }
    e = d->nodes[off].first;
    if (!ds__st_uint(d, e, &begin) || !ds__st_uint(d, d->nodes[e].next, &end) || end < begin)
        return ds__fail(DS_ERR_FORMAT, "%s: tensor '%s': data_offsets are not two ordered non-negative integers", st->what, t->name);
    if (end > st->data_size)
        return ds__fail(DS_ERR_BOUNDS, "%s: tensor '%s': data ends at %llu, the data section has %llu bytes", st->what, t->name, (unsigned long long)end, (unsigned long long)st->data_size);
    if (n > UINT64_MAX / size) return ds__fail(DS_ERR_OVERFLOW, "%s: tensor '%s': its byte size overflows", st->what, t->name);
    if (end - begin != n * size)
        return ds__fail(DS_ERR_FORMAT, "%s: tensor '%s': %llu bytes of data for %llu %s elements", st->what, t->name, (unsigned long long)(end - begin), (unsigned long long)n, t->dtype);
    t->data = st->data + begin;
    t->nbytes = end - begin;
    return DS_OK;
}

static ds_status ds__st_parse(ds_safetensors *st, const uint8_t *file, size_t size) {
    ds__json d;
    uint64_t hl = 0, strs = 0;
    uint32_t k, v, mk, root = 0, md = 0;
    int64_t i, nt = 0, nm = 0;
    char *p;
    ds_status s;
    int b;
    if (size < 8) return ds__fail(DS_ERR_FORMAT, "%s: %llu bytes, shorter than the 8-byte header length", st->what, (unsigned long long)size);
    for (b = 7; b >= 0; b--) hl = hl << 8 | file[b];
    if (hl > size - 8) return ds__fail(DS_ERR_BOUNDS, "%s: header of %llu bytes, the file has %llu after the length", st->what, (unsigned long long)hl, (unsigned long long)(size - 8));
    if (hl > DS__ST_MAX_HEADER) return ds__fail(DS_ERR_FORMAT, "%s: header of %llu bytes (at most 100 MB)", st->what, (unsigned long long)hl);
    st->data = file + 8 + hl;
    st->data_size = size - 8 - hl;
    if ((s = ds__json_parse(DS__CAST(const char *, file + 8), (size_t)hl, st->what, &d)) != DS_OK) return s;
    if (d.nodes[root].type != DS__JSON_OBJECT) {
        ds__json_free(&d);
        return ds__fail(DS_ERR_FORMAT, "%s: the header is not a JSON object", st->what);
    }
    for (k = d.nodes[root].first; k; k = d.nodes[v].next) {   /* count, size the strings */
        v = d.nodes[k].next;
        strs += d.nodes[k].n + 1;
        if (!ds__json_str_eq(&d, k, "__metadata__")) {
            nt++;
            continue;
        }
        md = v;
        if (d.nodes[v].type != DS__JSON_OBJECT) {
            ds__json_free(&d);
            return ds__fail(DS_ERR_FORMAT, "%s: __metadata__ is not an object", st->what);
        }
        for (mk = d.nodes[v].first; mk; mk = d.nodes[d.nodes[mk].next].next) {
            uint32_t mv = d.nodes[mk].next;
            if (d.nodes[mv].type != DS__JSON_STRING) {
                ds__json_free(&d);
                return ds__fail(DS_ERR_FORMAT, "%s: __metadata__ value %lld is not a string", st->what, (long long)nm);
            }
            strs += d.nodes[mk].n + d.nodes[mv].n + 2;
            nm++;
        }
    }
    st->t = DS__CAST(ds_st_tensor *, ds__calloc((size_t)nt + 1, sizeof *st->t));
    st->meta = DS__CAST(const char **, ds__calloc(2 * (size_t)nm + 1, sizeof *st->meta));
    st->strs = DS__CAST(char *, ds_alloc((size_t)strs + 1));
    if (!st->t || !st->meta || !st->strs) {
        ds__json_free(&d);
        return ds__fail(DS_ERR_NO_MEMORY, "%s: out of memory", st->what);
    }
    p = st->strs;
    s = DS_OK;
    for (k = d.nodes[root].first; k && s == DS_OK; k = d.nodes[v].next) {
        v = d.nodes[k].next;
        if (ds__json_str_eq(&d, k, "__metadata__")) continue;
        st->t[st->n].name = ds__st_copy(&d, k, &p);
        s = ds__st_entry(st, &d, v, &st->t[st->n++]);
    }
    if (md)
        for (k = d.nodes[md].first; k; k = d.nodes[d.nodes[k].next].next) {
            st->meta[2 * st->n_meta] = ds__st_copy(&d, k, &p);
            st->meta[2 * st->n_meta++ + 1] = ds__st_copy(&d, d.nodes[k].next, &p);
        }
    ds__json_free(&d);
    if (s != DS_OK) return s;
    qsort(st->t, (size_t)st->n, sizeof *st->t, ds__st_by_offset);
    for (i = 1; i < st->n; i++)
        if (DS__CAST(const uint8_t *, st->t[i].data) < DS__CAST(const uint8_t *, st->t[i - 1].data) + st->t[i - 1].nbytes)
            return ds__fail(DS_ERR_FORMAT, "%s: tensors '%s' and '%s' overlap", st->what, st->t[i - 1].name, st->t[i].name);
    qsort(st->t, (size_t)st->n, sizeof *st->t, ds__st_by_name);
    for (i = 1; i < st->n; i++)
        if (!strcmp(st->t[i].name, st->t[i - 1].name)) return ds__fail(DS_ERR_FORMAT, "%s: tensor '%s' appears twice", st->what, st->t[i].name);
    return DS_OK;
}

static ds_status ds__st_open(const char *path, const void *data, size_t size, ds_safetensors **out) {
    ds_safetensors *st;
    ds_status s;
    if ((!path && !data) || !out) return ds__fail(DS_ERR_INVALID_ARG, "safetensors: NULL argument");
    *out = NULL;
    if (!(st = DS__CAST(ds_safetensors *, ds__calloc(1, sizeof *st)))) return ds__fail(DS_ERR_NO_MEMORY, "safetensors: out of memory");
    snprintf(st->what, sizeof st->what, "safetensors '%.140s'", path ? path : "(memory)");
    if (path && (s = ds_map_file(path, &st->map)) != DS_OK) {
        ds_free(st);
        return s;
    }
    s = path ? ds__st_parse(st, st->map.data, st->map.size) : ds__st_parse(st, DS__CAST(const uint8_t *, data), size);
    if (s != DS_OK) {
        ds_safetensors_free(st);
        return s;
    }
    *out = st;
    return DS_OK;
}

DS_API ds_status ds_safetensors_open(const char *path, ds_safetensors **out) { return ds__st_open(path, NULL, 0, out); }
DS_API ds_status ds_safetensors_open_memory(const void *data, size_t size, ds_safetensors **out) { return ds__st_open(NULL, data, size, out); }
DS_API int64_t ds_safetensors_n_tensors(const ds_safetensors *st) { return st ? st->n : 0; }
DS_API const ds_st_tensor *ds_safetensors_tensor_at(const ds_safetensors *st, int64_t i) {
    return st && i >= 0 && i < st->n ? &st->t[i] : NULL;
}
DS_API const ds_st_tensor *ds_safetensors_find(const ds_safetensors *st, const char *name) {
    ds_st_tensor key;
    if (!st || !name || !st->n) return NULL;
    memset(&key, 0, sizeof key);
    key.name = name;
    return DS__CAST(const ds_st_tensor *, bsearch(&key, st->t, (size_t)st->n, sizeof *st->t, ds__st_by_name));
}
DS_API const char *ds_safetensors_meta(const ds_safetensors *st, const char *key) {
    int64_t i;
    for (i = 0; st && key && i < st->n_meta; i++)
        if (!strcmp(st->meta[2 * i], key)) return st->meta[2 * i + 1];
    return NULL;
}

typedef struct ds__st_emit_job {
    const ds_st_write *t;
    const uint64_t *nbytes;
    int n;
    ds__buf header;
} ds__st_emit_job;
static void ds__st_emit(ds__gguf_out *o, void *ctx) {
    ds__st_emit_job *j = DS__CAST(ds__st_emit_job *, ctx);
    int i;
    ds__gguf_emit64(o, (uint64_t)j->header.n);
    ds__gguf_emit(o, j->header.p, j->header.n);
    for (i = 0; i < j->n; i++) ds__gguf_emit(o, j->t[i].data, j->nbytes[i]);
}

DS_API ds_status ds_safetensors_write(const char *path, const ds_st_write *t, int n, const char *const *meta, int n_meta) {
    ds__st_emit_job j;
    uint64_t *nbytes, off = 0;
    ds_status s = DS_OK;
    int i, k;
    if (!path || n < 0 || n_meta < 0 || (n && !t) || (n_meta && !meta)) return ds__fail(DS_ERR_INVALID_ARG, "safetensors writer: bad argument");
    if (!(nbytes = DS__CAST(uint64_t *, ds__calloc((size_t)n + 1, sizeof *nbytes)))) return ds__fail(DS_ERR_NO_MEMORY, "safetensors writer: out of memory");
    memset(&j, 0, sizeof j);
    ds__buf_putc(&j.header, '{');
    if (n_meta) {
        ds__buf_puts(&j.header, "\"__metadata__\":{");
        for (i = 0; i < n_meta; i++) {
            if (i) ds__buf_putc(&j.header, ',');
            ds__json_write_str(&j.header, meta[2 * i], strlen(meta[2 * i]));
            ds__buf_putc(&j.header, ':');
            ds__json_write_str(&j.header, meta[2 * i + 1], strlen(meta[2 * i + 1]));
        }
        ds__buf_putc(&j.header, '}');
    }
    for (i = 0; i < n && s == DS_OK; i++) {
        int64_t elems = 1;
        const char *dt = t[i].type == DS_TYPE_F32 ? "F32" : t[i].type == DS_TYPE_F16 ? "F16" : t[i].type == DS_TYPE_BF16 ? "BF16" : NULL;
        if (!dt || !t[i].name || t[i].n_dims < 0 || t[i].n_dims > 8) {
            s = ds__fail(DS_ERR_INVALID_ARG, "safetensors writer: tensor %d: type %s or %d dims not supported", i, ds_type_name(t[i].type), t[i].n_dims);
            break;
        }
        for (k = 0; k < t[i].n_dims; k++) elems *= t[i].shape[k];
        nbytes[i] = (uint64_t)elems * (t[i].type == DS_TYPE_F32 ? 4u : 2u);
        if (n_meta || i) ds__buf_putc(&j.header, ',');
        ds__json_write_str(&j.header, t[i].name, strlen(t[i].name));
        ds__buf_printf(&j.header, ":{\"dtype\":\"%s\",\"shape\":[", dt);
        for (k = 0; k < t[i].n_dims; k++) ds__buf_printf(&j.header, "%s%lld", k ? "," : "", (long long)t[i].shape[k]);
        ds__buf_printf(&j.header, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off, (unsigned long long)(off + nbytes[i]));
        off += nbytes[i];
    }
    ds__buf_putc(&j.header, '}');
    while (j.header.n % 8) ds__buf_putc(&j.header, ' ');   /* the data section starts 8-aligned */
    if (s == DS_OK && j.header.oom) s = ds__fail(DS_ERR_NO_MEMORY, "safetensors writer: out of memory");
    if (s == DS_OK) {
        j.t = t;
        j.nbytes = nbytes;
        j.n = n;
        s = ds__write_atomic(path, "safetensors writer", ds__st_emit, &j);
    }
    ds__buf_free(&j.header);
    ds_free(nbytes);
    return s;
}

// >>quant
/* ---- model quantizer (ds_quantize_model) ------------------------------------------------------
   llama.cpp's llama_model_quantize for the types we have: which tensors it quantizes, its
   per-tensor mixes, its fallback when rows are not whole blocks, and its file_type ids
   (llama_ftype). A mix names its base type; Q4_K and Q5_K are llama-quantize's aliases of the
   _M mixes. */
enum { DS__MIX_NONE, DS__MIX_Q4_K_S, DS__MIX_Q4_K_M, DS__MIX_Q5_K_S, DS__MIX_Q5_K_M, DS__MIX_IQ4_NL };
typedef struct ds__qtype { const char *name; ds_type type; uint32_t ftype; int mix; } ds__qtype;
static const ds__qtype ds__qtypes[] = {
    {"F32", DS_TYPE_F32, 0, 0}, {"F16", DS_TYPE_F16, 1, 0}, {"BF16", DS_TYPE_BF16, 32, 0},
    {"Q8_0", DS_TYPE_Q8_0, 7, 0}, {"Q6_K", DS_TYPE_Q6_K, 18, 0}, {"Q5_1", DS_TYPE_Q5_1, 9, 0}, {"Q5_0", DS_TYPE_Q5_0, 8, 0},
    {"Q5_K_M", DS_TYPE_Q5_K, 17, DS__MIX_Q5_K_M}, {"Q5_K_S", DS_TYPE_Q5_K, 16, DS__MIX_Q5_K_S}, {"Q5_K", DS_TYPE_Q5_K, 17, DS__MIX_Q5_K_M},
    {"Q4_1", DS_TYPE_Q4_1, 3, 0}, {"Q4_0", DS_TYPE_Q4_0, 2, 0}, {"IQ4_NL", DS_TYPE_IQ4_NL, 25, DS__MIX_IQ4_NL},
    {"Q4_K_M", DS_TYPE_Q4_K, 15, DS__MIX_Q4_K_M}, {"Q4_K_S", DS_TYPE_Q4_K, 14, DS__MIX_Q4_K_S}, {"Q4_K", DS_TYPE_Q4_K, 15, DS__MIX_Q4_K_M}};
#define DS__N_QTYPES ((int)(sizeof ds__qtypes / sizeof ds__qtypes[0]))

DS_API const char *const *ds_quantize_type_names(void) {
    static const char *names[DS__N_QTYPES + 1];
    int i;
    for (i = 0; i < DS__N_QTYPES; i++) names[i] = ds__qtypes[i].name;
    names[DS__N_QTYPES] = NULL;
    return names;
}

static int ds__str_is(ds_str s, const char *z) { return s.len == strlen(z) && memcmp(s.ptr, z, s.len) == 0; }
static int ds__str_ends(ds_str s, const char *z) { size_t n = strlen(z); return s.len >= n && memcmp(s.ptr + s.len - n, z, n) == 0; }
static int ds__str_has(ds_str s, const char *z) {
    size_t n = strlen(z), i;
    for (i = 0; i + n <= s.len; i++)
        if (memcmp(s.ptr + i, z, n) == 0) return 1;
    return 0;
}

/* ---- importance matrix --------------------------------------------------------------------- */
typedef struct ds__imat_entry {
    char name[DS__GGUF_MAX_NAME + 1];
    int64_t cols;
    double *sum;      /* (cols) sums of x^2 while collecting */
    float *mean;      /* (cols) in_sum2 / counts once loaded */
    double count;     /* tokens */
} ds__imat_entry;

struct ds_imatrix {
    ds__imat_entry *e;
    int n, cap, failed;
    int chunk_count, chunk_size;
};

DS_API ds_status ds_imatrix_create(ds_imatrix **out) {
    if (!out) return ds__fail(DS_ERR_INVALID_ARG, "imatrix: NULL argument");
    *out = DS__CAST(ds_imatrix *, ds__calloc(1, sizeof **out));
    return *out ? DS_OK : ds__fail(DS_ERR_NO_MEMORY, "imatrix: out of memory");
}

DS_API void ds_imatrix_free(ds_imatrix *im) {
    int i;
    if (!im) return;
    for (i = 0; i < im->n; i++) {
        ds_free(im->e[i].sum);
        ds_free(im->e[i].mean);
    }
    ds_free(im->e);
    ds_free(im);
}

static ds__imat_entry *ds__imat_get(ds_imatrix *im, const char *name, size_t len, int64_t cols, int add) {
    int i;
    ds__imat_entry *e;
    for (i = 0; i < im->n; i++)
        if (strlen(im->e[i].name) == len && memcmp(im->e[i].name, name, len) == 0) return &im->e[i];
    if (!add || len > DS__GGUF_MAX_NAME) return NULL;
    if (im->n == im->cap) {
        int cap = im->cap ? 2 * im->cap : 64;
        ds__imat_entry *ne = DS__CAST(ds__imat_entry *, ds_alloc((size_t)cap * sizeof *ne));
        if (!ne) return NULL;
        if (im->n) memcpy(ne, im->e, (size_t)im->n * sizeof *ne);
        ds_free(im->e);
        im->e = ne;
        im->cap = cap;
    }
    e = &im->e[im->n];
    memset(e, 0, sizeof *e);
    memcpy(e->name, name, len);
    e->name[len] = '\0';
    e->cols = cols;
    im->n++;
    return e;
}

static void ds__imat_observe(void *user, const char *name, size_t len, const float *x, int T, int cols) {
    ds_imatrix *im = DS__CAST(ds_imatrix *, user);
    ds__imat_entry *e;
    int t, j;
    if (len < 4 || memcmp(name, "blk.", 4) != 0) return;   /* llama-imatrix's default: not the output head */
    if (!(e = ds__imat_get(im, name, len, cols, 1)) || (!e->sum && !(e->sum = DS__CAST(double *, ds__calloc((size_t)cols, sizeof(double)))))) {
        im->failed = 1;
        return;
    }
    if (e->cols != cols) {
        im->failed = 1;
        return;
    }
    for (t = 0; t < T; t++, x += cols)
        for (j = 0; j < cols; j++) e->sum[j] += (double)x[j] * (double)x[j];
    e->count += T;
}

DS_API void ds_imatrix_attach(ds_imatrix *im, ds_session *s) { ds_session_set_observer(s, im ? ds__imat_observe : NULL, im); }

DS_API void ds_imatrix_count_chunk(ds_imatrix *im, int chunk_size) {
    if (!im) return;
    im->chunk_count++;
    im->chunk_size = chunk_size;
}

DS_API ds_status ds_imatrix_write(const ds_imatrix *im, const char *path, const char *dataset) {
    ds_gguf_writer *w = NULL;
    float *buf = NULL;
    size_t total = 0, off = 0;
    ds_status s;
    int i;
    if (!im || !path) return ds__fail(DS_ERR_INVALID_ARG, "imatrix: NULL argument");
    if (im->failed) return ds__fail(DS_ERR_NO_MEMORY, "imatrix: out of memory while collecting");
    if (!im->n) return ds__fail(DS_ERR_STATE, "imatrix: nothing collected (no dense layer was evaluated)");
    for (i = 0; i < im->n; i++) total += (size_t)im->e[i].cols + 1;
    if (!(buf = DS__CAST(float *, ds_alloc(total * sizeof(float))))) return ds__fail(DS_ERR_NO_MEMORY, "imatrix: out of memory");
    if ((s = ds_gguf_writer_create(&w)) || (s = ds_gguf_writer_set_str(w, "general.type", "imatrix")) ||
        (s = ds_gguf_writer_set_arr_str(w, "imatrix.datasets", &dataset, dataset ? 1 : 0)) ||
        (s = ds_gguf_writer_set_u32(w, "imatrix.chunk_count", (uint32_t)im->chunk_count)) ||
        (s = ds_gguf_writer_set_u32(w, "imatrix.chunk_size", (uint32_t)im->chunk_size)))
        goto done;
    for (i = 0; i < im->n && !s; i++) {
        const ds__imat_entry *e = &im->e[i];
        char name[DS__GGUF_MAX_NAME + 16];
        int64_t ne_sum[2], ne_cnt[2] = {1, 1};
        int64_t j;
        ne_sum[0] = e->cols;
        ne_sum[1] = 1;
        for (j = 0; j < e->cols; j++) buf[off + (size_t)j] = e->sum ? (float)e->sum[j] : e->mean[j];
        buf[off + (size_t)e->cols] = e->sum ? (float)e->count : 1.0f;
        snprintf(name, sizeof name, "%s.in_sum2", e->name);
        if ((s = ds_gguf_writer_add_tensor(w, name, DS_TYPE_F32, 2, ne_sum, buf + off))) break;
        snprintf(name, sizeof name, "%s.counts", e->name);
        s = ds_gguf_writer_add_tensor(w, name, DS_TYPE_F32, 2, ne_cnt, buf + off + (size_t)e->cols);
        off += (size_t)e->cols + 1;
    }
    if (!s) s = ds_gguf_writer_write(w, path);
done:
    ds_gguf_writer_free(w);
    ds_free(buf);
    return s;
}

/* the entries of an opened imatrix file (path names it in messages) */
static ds_status ds__imatrix_read(const ds_gguf *g, const char *path, ds_imatrix **out) {
    ds_imatrix *im = NULL;
    ds_status s;
    int64_t i, j;
    *out = NULL;
    if ((s = ds_imatrix_create(&im))) return s;
    for (i = 0; i < ds_gguf_n_tensors(g); i++) {
        const ds_gguf_tensor *t = ds_gguf_tensor_at(g, i), *c;
        char cname[DS__GGUF_MAX_NAME + 16];
        const float *sum, *cnt;
        size_t base;
        ds__imat_entry *e;
        if (ds__str_ends(t->name, ".counts")) {   /* each must belong to an in_sum2 */
            base = t->name.len - 7;
            snprintf(cname, sizeof cname, "%.*s.in_sum2", (int)DS__MIN(base, (size_t)DS__GGUF_MAX_NAME), t->name.ptr);
            if (!ds_gguf_find_tensor(g, cname)) {
                s = ds__fail(DS_ERR_FORMAT, "imatrix %s: '%.*s' has no in_sum2 tensor", path, (int)t->name.len, t->name.ptr);
                goto done;
            }
            continue;
        }
        if (!ds__str_ends(t->name, ".in_sum2")) continue;   /* other tensors are ignored, as llama.cpp does */
        base = t->name.len - 8;
        snprintf(cname, sizeof cname, "%.*s.counts", (int)DS__MIN(base, (size_t)DS__GGUF_MAX_NAME), t->name.ptr);
        c = ds_gguf_find_tensor(g, cname);
        if (t->type != DS_TYPE_F32 || t->n_dims > 2 || t->ne[0] < 1 || !c || c->type != DS_TYPE_F32 || c->ne[0] != 1 || c->ne[1] != t->ne[1] ||
            c->n_dims > 2) {
            s = ds__fail(DS_ERR_FORMAT, "imatrix %s: '%.*s' is not an F32 [cols, n] tensor with an F32 [1, n] '%s'", path, (int)t->name.len,
                         t->name.ptr, cname);
            goto done;
        }
        sum = DS__CAST(const float *, t->data);
        cnt = DS__CAST(const float *, c->data);
        if (!(cnt[0] > 0.0f) || !isfinite(cnt[0])) {
            s = ds__fail(DS_ERR_FORMAT, "imatrix %s: '%s' is %g, not a positive token count", path, cname, (double)cnt[0]);
            goto done;
        }
        if (ds__imat_get(im, t->name.ptr, base, t->ne[0], 0)) {
            s = ds__fail(DS_ERR_FORMAT, "imatrix %s: '%.*s' appears twice", path, (int)t->name.len, t->name.ptr);
            goto done;
        }
        if (!(e = ds__imat_get(im, t->name.ptr, base, t->ne[0], 1)) || !(e->mean = DS__CAST(float *, ds_alloc((size_t)t->ne[0] * sizeof(float))))) {
            s = ds__fail(DS_ERR_NO_MEMORY, "imatrix %s: out of memory", path);
            goto done;
        }
        for (j = 0; j < t->ne[0]; j++) {
            if (!isfinite(sum[j]) || sum[j] < 0.0f) {
                s = ds__fail(DS_ERR_FORMAT, "imatrix %s: '%.*s' holds %g at column %lld", path, (int)t->name.len, t->name.ptr, (double)sum[j], (long long)j);
                goto done;
            }
            e->mean[j] = sum[j] / cnt[0];
        }
        e->count = cnt[0];
    }
    if (!im->n) s = ds__fail(DS_ERR_FORMAT, "imatrix %s: no '<weight>.in_sum2' tensors", path);
done:
    if (s) ds_imatrix_free(im);
    else *out = im;
    return s;
}

DS_API ds_status ds_imatrix_load(const char *path, ds_imatrix **out) {
    ds_gguf *g = NULL;
    ds_status s;
    if (!path || !out) return ds__fail(DS_ERR_INVALID_ARG, "imatrix: NULL argument");
    *out = NULL;
    if ((s = ds_gguf_open(path, &g))) return s;
    s = ds__imatrix_read(g, path, out);
    ds_gguf_free(g);
    return s;
}

DS_API int ds_imatrix_n_entries(const ds_imatrix *im) { return im ? im->n : 0; }

DS_API const float *ds_imatrix_entry(const ds_imatrix *im, int i, const char **name, int64_t *cols) {
    if (!im || i < 0 || i >= im->n) return NULL;
    if (name) *name = im->e[i].name;
    if (cols) *cols = im->e[i].cols;
    return im->e[i].mean;
}

DS_API const float *ds_imatrix_find(const ds_imatrix *im, const char *name, int64_t *cols) {
    int i;
    for (i = 0; im && name && i < im->n; i++)
        if (strcmp(im->e[i].name, name) == 0) return ds_imatrix_entry(im, i, NULL, cols);
    return NULL;
}

/* what the mixes count: the layer of a blk.N. tensor (-1 for others), the attn_v matrices
   (llama.cpp counts them in the file) and the layers (its ffn_down count is n_layer) */
typedef struct ds__quant_plan { int64_t n_attn_v, n_layer, n_gqa; } ds__quant_plan;
static int64_t ds__tensor_layer(ds_str name) {
    int64_t v = 0;
    size_t i = 4;
    if (name.len < 6 || memcmp(name.ptr, "blk.", 4) != 0) return -1;
    for (; i < name.len && name.ptr[i] >= '0' && name.ptr[i] <= '9' && v < 1000000; i++) v = v * 10 + (name.ptr[i] - '0');
    return i > 4 && i < name.len && name.ptr[i] == '.' ? v : -1;
}
static void ds__quant_plan_init(const ds_gguf *g, ds__quant_plan *p) {
    char key[96];
    ds_str arch;
    uint32_t n = 0;
    int64_t i;
    memset(p, 0, sizeof p[0]);
    for (i = 0; i < ds_gguf_n_tensors(g); i++) {
        const ds_gguf_tensor *t = ds_gguf_tensor_at(g, i);
        if (ds__str_has(t->name, "attn_v.weight") || ds__str_has(t->name, "attn_qkv.weight") || ds__str_has(t->name, "attn_kv_b.weight"))
            p->n_attn_v++;
        if (ds__str_has(t->name, "ffn_down")) p->n_layer = DS__MAX(p->n_layer, ds__tensor_layer(t->name) + 1);
    }
    if (ds_gguf_get_str(g, "general.architecture", &arch) == DS_OK && arch.len < 64) {
        snprintf(key, sizeof key, "%.*s.block_count", (int)arch.len, arch.ptr);
        if (ds_gguf_get_u32(g, key, &n) == DS_OK) p->n_layer = n;
        snprintf(key, sizeof key, "%.*s.attention.head_count", (int)arch.len, arch.ptr);
        if (ds_gguf_get_u32(g, key, &n) == DS_OK) {
            uint32_t kv = 0;
            snprintf(key, sizeof key, "%.*s.attention.head_count_kv", (int)arch.len, arch.ptr);
            if (ds_gguf_get_u32(g, key, &kv) != DS_OK) kv = n;
            p->n_gqa = kv ? n / kv : 0;
        }
    }
}

/* llama.cpp's use_more_bits: the first and last eighth of the layers and every third between */
static int ds__more_bits(int64_t i, int64_t n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

/* llama.cpp's choice (llama_tensor_get_type): the tensor's type in the output, or its own type
   when it stays */
static ds_type ds__quant_choose(const ds_gguf *g, const ds_gguf_tensor *t, const ds__qtype *q, const ds_quantize_config *cfg,
                                const ds__quant_plan *p) {
    int n_dims = t->n_dims, is_output = ds__str_is(t->name, "output.weight");
    int64_t layer = ds__tensor_layer(t->name);
    ds_type nt = q->type;
    while (n_dims > 1 && t->ne[n_dims - 1] == 1) n_dims--; /* ggml_n_dims */
    if (!ds__str_ends(t->name, "weight") || n_dims < 2 || ds__str_has(t->name, "_norm.weight") ||
        ds__str_has(t->name, "ffn_gate_inp.weight") || (is_output && cfg->keep_output))
        return t->type;
    if (cfg->pure || ds_type_block_elems(nt) == 1) return nt;
    if (is_output || (!ds_gguf_find_tensor(g, "output.weight") && ds__str_is(t->name, "token_embd.weight")))
        return t->ne[0] % DS__QK_K ? DS_TYPE_Q8_0 : nt == DS_TYPE_Q8_0 ? nt : DS_TYPE_Q6_K;
    if (ds__str_has(t->name, "attn_v.weight")) {
        if ((q->mix == DS__MIX_Q4_K_M || q->mix == DS__MIX_Q5_K_M) && ds__more_bits(layer, p->n_attn_v)) nt = DS_TYPE_Q6_K;
        else if (q->mix == DS__MIX_Q4_K_S && layer < 4) nt = DS_TYPE_Q5_K;
        else if (q->mix == DS__MIX_IQ4_NL && p->n_gqa >= 4) nt = DS_TYPE_Q5_K;
    } else if (ds__str_has(t->name, "ffn_down")) {
        if ((q->mix == DS__MIX_Q4_K_M || q->mix == DS__MIX_Q5_K_M) && ds__more_bits(layer, p->n_layer)) nt = DS_TYPE_Q6_K;
        else if ((q->mix == DS__MIX_Q4_K_S || q->mix == DS__MIX_IQ4_NL) && layer < p->n_layer / 8) nt = DS_TYPE_Q5_K;
    } else if (ds__str_has(t->name, "attn_qkv.weight")) {
        if (q->mix == DS__MIX_Q4_K_M) nt = DS_TYPE_Q5_K;
        else if (q->mix == DS__MIX_Q5_K_M) nt = DS_TYPE_Q6_K;
    }
    return nt;
}

/* llama.cpp's replacement when ne0 is not a whole number of nt's blocks */
static ds_type ds__quant_fallback(ds_type nt, int64_t ne0) {
    if (ne0 % (int64_t)ds_type_block_elems(nt) == 0) return nt;
    if (nt == DS_TYPE_Q4_K) nt = DS_TYPE_Q5_0;
    else if (nt == DS_TYPE_Q5_K) nt = DS_TYPE_Q5_1;
    else if (nt == DS_TYPE_Q6_K) nt = DS_TYPE_Q8_0;
    return ne0 % (int64_t)ds_type_block_elems(nt) ? DS_TYPE_F16 : nt;
}

/* the importance matrix at path, checked against the model g: every entry must name one of its
   matrices and have its width (else it was made for another model) */
static ds_status ds__quant_imatrix(const char *path, const char *model_path, const ds_gguf *g, ds_imatrix **out) {
    ds_status s = ds_imatrix_load(path, out);
    int i;
    for (i = 0; s == DS_OK && i < ds_imatrix_n_entries(*out); i++) {
        const char *name;
        int64_t cols;
        const ds_gguf_tensor *t;
        ds_imatrix_entry(*out, i, &name, &cols);
        if (!(t = ds_gguf_find_tensor(g, name)) || t->n_dims < 2)
            s = ds__fail(DS_ERR_FORMAT, "quantize: imatrix %s has '%s', which %s has no matrix of: an imatrix of another model?", path, name, model_path);
        else if (t->ne[0] != cols)
            s = ds__fail(DS_ERR_FORMAT, "quantize: imatrix %s has %lld columns for '%s', %s has %lld: an imatrix of another model?", path,
                         (long long)cols, name, model_path, (long long)t->ne[0]);
    }
    if (s) {
        ds_imatrix_free(*out);
        *out = NULL;
    }
    return s;
}
/* A low-rank update added to a tensor's rows before they are re-quantized (ds_lora_merge):
   row j += c * sum_i bt[i * out + j] * a[i * in ...] */
typedef struct ds__row_delta {
    const float *a, *bt;   /* (r, in), (r, out) */
    int r;
    int64_t out;
    float c;
} ds__row_delta;
/* the deltas of tensor `name` (count, *out valid until the next call) */
typedef int (*ds__delta_fn)(void *ctx, const char *name, const ds__row_delta **out);

typedef struct ds__quant_job {
    const uint8_t *src;
    uint8_t *dst;
    ds_type from, to;
    int64_t ne0, rows, rows_per_task;
    size_t src_row, dst_row;
    float **scratch; /* one row of floats per pool slot */
    const float *qw; /* importance per column (ne0), or NULL */
    const ds__row_delta *delta;
    int n_delta;
    unsigned char *fail; /* one flag per task: tasks run on several threads */
} ds__quant_job;

static void ds__quant_task(void *ctx, int i, int n) {
    ds__quant_job *j = DS__CAST(ds__quant_job *, ctx);
    int64_t r = (int64_t)i * j->rows_per_task, r1 = DS__MIN(j->rows, r + j->rows_per_task), c;
    float *row = DS__CAST(float *, ds_alloc((size_t)j->ne0 * sizeof(float)));
    int k, q;
    (void)n;
    if (!row) {
        j->fail[i] = 1;
        return;
    }
    for (; r < r1; r++) {
        ds__dequantize_row(j->from, j->src + (size_t)r * j->src_row, row, j->ne0);
        for (k = 0; k < j->n_delta; k++) {
            const ds__row_delta *d = &j->delta[k];
            for (q = 0; q < d->r; q++) {
                float f = d->c * d->bt[(size_t)q * (size_t)d->out + (size_t)r];
                const float *a = d->a + (size_t)q * (size_t)j->ne0;
                for (c = 0; c < j->ne0; c++) row[c] += f * a[c];
            }
        }
        ds__quantize_row_w(j->to, row, j->dst + (size_t)r * j->dst_row, j->ne0, j->qw);
    }
    ds_free(row);
}

/* ds_quantize_model, and with `deltas` ds_lora_merge: keep = 1 leaves every tensor its type */
static ds_status ds__quantize_file(const char *in_path, const char *out_path, const ds_quantize_config *cfg_in, int keep, ds__delta_fn deltas, void *dctx) {
    ds_quantize_config cfg;
    ds__quant_plan plan;
    const ds__qtype *q = NULL;
    ds_gguf *g = NULL;
    ds_gguf_writer *w = NULL;
    ds_pool *pool = NULL;
    ds_pool_config pc;
    ds_imatrix *im = NULL;
    void **bufs = NULL;
    int64_t i, nt = 0;
    ds_status s;
    int k;
    if (!in_path || !out_path) return ds__fail(DS_ERR_INVALID_ARG, "quantize: NULL path");
    memset(&cfg, 0, sizeof cfg);
    if (cfg_in) cfg = *cfg_in;
    if (!cfg.type) cfg.type = "Q8_0";
    for (k = 0; k < DS__N_QTYPES; k++)
        if (strcmp(ds__qtypes[k].name, cfg.type) == 0) q = &ds__qtypes[k];
    if (!q) return ds__fail(DS_ERR_INVALID_ARG, "quantize: unknown type '%.32s'", cfg.type);
    if ((s = ds_gguf_open(in_path, &g))) return s;
    if (cfg.imatrix && (s = ds__quant_imatrix(cfg.imatrix, in_path, g, &im))) goto done;
    ds__quant_plan_init(g, &plan);
    memset(&pc, 0, sizeof pc);
    pc.n_threads = cfg.threads;
    nt = ds_gguf_n_tensors(g);
    if ((s = ds_pool_create(&pc, &pool)) || (s = ds_gguf_writer_create(&w)) || (s = ds_gguf_writer_copy_kv(w, g)) ||
        (!keep && ((s = ds_gguf_writer_set_u32(w, "general.quantization_version", 2)) || (s = ds_gguf_writer_set_u32(w, "general.file_type", q->ftype)))))
        goto done;
    ds_gguf_writer_set_checksum(w, 1); /* replaces a copied checksum of the input's data */
    if (!(bufs = DS__CAST(void **, ds__calloc((size_t)nt + 1, sizeof *bufs)))) {
        s = ds__fail(DS_ERR_NO_MEMORY, "quantize: out of memory");
        goto done;
    }
    for (i = 0; i < nt; i++) {
        const ds_gguf_tensor *t = ds_gguf_tensor_at(g, i);
        char name[DS__GGUF_MAX_NAME + 1];
        ds_quantize_event ev;
        ds_type want = keep ? t->type : ds__quant_choose(g, t, q, &cfg, &plan), to = keep ? want : ds__quant_fallback(want, t->ne[0]);
        const void *data = t->data;
        size_t len = DS__MIN(t->name.len, (size_t)DS__GGUF_MAX_NAME);
        const ds__row_delta *delta = NULL;
        int n_delta;
        memcpy(name, t->name.ptr, len);
        name[len] = '\0';
        n_delta = deltas ? deltas(dctx, name, &delta) : 0;
        if ((to != t->type || n_delta) && (!ds_type_block_elems(to) || to == DS_TYPE_Q8_1 || to == DS_TYPE_Q8_K)) {
            s = ds__fail(DS_ERR_UNSUPPORTED, "quantize: tensor '%s': no quantizer for %s yet", name, ds_type_name(to));
            goto done;
        }
        if (to != t->type || n_delta) {
            ds__quant_job j;
            int64_t n_elems = t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
            uint64_t nbytes;
            int tasks, p;
            memset(&j, 0, sizeof j);
            if ((s = ds_type_nbytes(to, n_elems, &nbytes))) goto done;
            if (!(bufs[i] = ds_alloc((size_t)nbytes + 1))) {
                s = ds__fail(DS_ERR_NO_MEMORY, "quantize: tensor '%s': out of memory for %llu bytes", name, (unsigned long long)nbytes);
                goto done;
            }
            j.src = DS__CAST(const uint8_t *, t->data);
            j.dst = DS__CAST(uint8_t *, bufs[i]);
            j.from = t->type;
            j.to = to;
            j.ne0 = t->ne[0];
            j.rows = n_elems / t->ne[0];
            j.src_row = ds__row_bytes(t->type, t->ne[0]);
            j.dst_row = ds__row_bytes(to, t->ne[0]);
            j.qw = t->ne[2] * t->ne[3] == 1 ? ds_imatrix_find(im, name, NULL) : NULL;   /* stacked experts: not observed */
            j.delta = delta;
            j.n_delta = n_delta;
            p = ds_pool_size(pool);
            j.rows_per_task = DS__MAX(1, j.rows / (8 * p));
            tasks = (int)((j.rows + j.rows_per_task - 1) / j.rows_per_task);
            if (!(j.fail = DS__CAST(unsigned char *, ds__calloc((size_t)tasks, 1)))) {
                s = ds__fail(DS_ERR_NO_MEMORY, "quantize: out of memory");
                goto done;
            }
            ds_pool_run(pool, ds__quant_task, &j, tasks);
            for (p = 0; p < tasks && !j.fail[p]; p++) {}
            ds_free(j.fail);
            if (p < tasks) {
                s = ds__fail(DS_ERR_NO_MEMORY, "quantize: tensor '%s': out of memory", name);
                goto done;
            }
            data = bufs[i];
        }
        if ((s = ds_gguf_writer_add_tensor(w, name, to, t->n_dims, t->ne, data))) goto done;
        if (cfg.progress) {
            ev.name = name;
            ev.index = i;
            ev.count = nt;
            ev.from = t->type;
            ev.to = to;
            ev.fallback = to != want;
            cfg.progress(cfg.user, &ev);
        }
    }
    s = ds_gguf_writer_write(w, out_path);
done:
    if (bufs)
        for (i = 0; i < nt; i++) ds_free(bufs[i]);
    ds_free(bufs);
    ds_gguf_writer_free(w);
    ds_pool_free(pool);
    ds_imatrix_free(im);
    ds_gguf_free(g);
    return s;
}

DS_API ds_status ds_quantize_model(const char *in_path, const char *out_path, const ds_quantize_config *cfg) {
    return ds__quantize_file(in_path, out_path, cfg, 0, NULL, NULL);
}

// >>tokenizer
/* ---- Unicode classes --------------------------------------------------------------------- */
/* The classes the pre-tokenizer patterns test: \p{L}, \p{N}, \p{M}, \p{P}, \p{S} (general
   categories of Unicode 16.0, as the reference's regex engine has them), \s (the White_Space
   property) and R, "numeric" for the Digits pre-tokenizer (category N of Unicode 17.0, as the
   reference's Rust char::is_numeric has it). */
enum { DS__UC_L = 1, DS__UC_N = 2, DS__UC_M = 4, DS__UC_P = 8, DS__UC_S = 16, DS__UC_W = 32, DS__UC_R = 64 };
// unicode-table:begin
/* generated by tools/gen_unicode_tables.py from the Unicode 16.0.0 Character Database (and
   17.0.0 for DS__UC_R): runs of (first code point << 8) | class mask, see DS__UC_* */
#define DS__UC_VERSION "16.0.0"
static const uint32_t ds__uc_runs[2328] = {
0x0,0x920,0xe00,0x2020,0x2108,0x2410,0x2508,0x2b10,0x2c08,0x3042,0x3a08,0x3c10,0x3f08,0x4101,
0x5b08,0x5e10,0x5f08,0x6010,0x6101,0x7b08,0x7c10,0x7d08,0x7e10,0x7f00,0x8520,0x8600,0xa020,0xa108,
0xa210,0xa708,0xa810,0xaa01,0xab08,0xac10,0xad00,0xae10,0xb242,0xb410,0xb501,0xb608,0xb810,0xb942,
0xba01,0xbb08,0xbc42,0xbf08,0xc001,0xd710,0xd801,0xf710,0xf801,0x2c210,0x2c601,0x2d210,0x2e001,
0x2e510,0x2ec01,0x2ed10,0x2ee01,0x2ef10,0x30004,0x37001,0x37510,0x37601,0x37800,0x37a01,0x37e08,
0x37f01,0x38000,0x38410,0x38601,0x38708,0x38801,0x38b00,0x38c01,0x38d00,0x38e01,0x3a200,0x3a301,
0x3f610,0x3f701,0x48210,0x48304,0x48a01,0x53000,0x53101,0x55700,0x55901,0x55a08,0x56001,0x58908,
0x58b00,0x58d10,0x59000,0x59104,0x5be08,0x5bf04,0x5c008,0x5c104,0x5c308,0x5c404,0x5c608,0x5c704,
0x5c800,0x5d001,0x5eb00,0x5ef01,0x5f308,0x5f500,0x60610,0x60908,0x60b10,0x60c08,0x60e10,0x61004,
0x61b08,0x61c00,0x61d08,0x62001,0x64b04,0x66042,0x66a08,0x66e01,0x67004,0x67101,0x6d408,0x6d501,
0x6d604,0x6dd00,0x6de10,0x6df04,0x6e501,0x6e704,0x6e910,0x6ea04,0x6ee01,0x6f042,0x6fa01,0x6fd10,
0x6ff01,0x70008,0x70e00,0x71001,0x71104,0x71201,0x73004,0x74b00,0x74d01,0x7a604,0x7b101,0x7b200,
0x7c042,0x7ca01,0x7eb04,0x7f401,0x7f610,0x7f708,0x7fa01,0x7fb00,0x7fd04,0x7fe10,0x80001,0x81604,
0x81a01,0x81b04,0x82401,0x82504,0x82801,0x82904,0x82e00,0x83008,0x83f00,0x84001,0x85904,0x85c00,
0x85e08,0x85f00,0x86001,0x86b00,0x87001,0x88810,0x88901,0x88f00,0x89704,0x8a001,0x8ca04,0x8e200,
0x8e304,0x90401,0x93a04,0x93d01,0x93e04,0x95001,0x95104,0x95801,0x96204,0x96408,0x96642,0x97008,
0x97101,0x98104,0x98400,0x98501,0x98d00,0x98f01,0x99100,0x99301,0x9a900,0x9aa01,0x9b100,0x9b201,
0x9b300,0x9b601,0x9ba00,0x9bc04,0x9bd01,0x9be04,0x9c500,0x9c704,0x9c900,0x9cb04,0x9ce01,0x9cf00,
0x9d704,0x9d800,0x9dc01,0x9de00,0x9df01,0x9e204,0x9e400,0x9e642,0x9f001,0x9f210,0x9f442,0x9fa10,
0x9fc01,0x9fd08,0x9fe04,0x9ff00,0xa0104,0xa0400,0xa0501,0xa0b00,0xa0f01,0xa1100,0xa1301,0xa2900,
0xa2a01,0xa3100,0xa3201,0xa3400,0xa3501,0xa3700,0xa3801,0xa3a00,0xa3c04,0xa3d00,0xa3e04,0xa4300,
0xa4704,0xa4900,0xa4b04,0xa4e00,0xa5104,0xa5200,0xa5901,0xa5d00,0xa5e01,0xa5f00,0xa6642,0xa7004,
0xa7201,0xa7504,0xa7608,0xa7700,0xa8104,0xa8400,0xa8501,0xa8e00,0xa8f01,0xa9200,0xa9301,0xaa900,
0xaaa01,0xab100,0xab201,0xab400,0xab501,0xaba00,0xabc04,0xabd01,0xabe04,0xac600,0xac704,0xaca00,
0xacb04,0xace00,0xad001,0xad100,0xae001,0xae204,0xae400,0xae642,0xaf008,0xaf110,0xaf200,0xaf901,
0xafa04,0xb0000,0xb0104,0xb0400,0xb0501,0xb0d00,0xb0f01,0xb1100,0xb1301,0xb2900,0xb2a01,0xb3100,
0xb3201,0xb3400,0xb3501,0xb3a00,0xb3c04,0xb3d01,0xb3e04,0xb4500,0xb4704,0xb4900,0xb4b04,0xb4e00,
0xb5504,0xb5800,0xb5c01,0xb5e00,0xb5f01,0xb6204,0xb6400,0xb6642,0xb7010,0xb7101,0xb7242,0xb7800,
0xb8204,0xb8301,0xb8400,0xb8501,0xb8b00,0xb8e01,0xb9100,0xb9201,0xb9600,0xb9901,0xb9b00,0xb9c01,
0xb9d00,0xb9e01,0xba000,0xba301,0xba500,0xba801,0xbab00,0xbae01,0xbba00,0xbbe04,0xbc300,0xbc604,
0xbc900,0xbca04,0xbce00,0xbd001,0xbd100,0xbd704,0xbd800,0xbe642,0xbf310,0xbfb00,0xc0004,0xc0501,
0xc0d00,0xc0e01,0xc1100,0xc1201,0xc2900,0xc2a01,0xc3a00,0xc3c04,0xc3d01,0xc3e04,0xc4500,0xc4604,
0xc4900,0xc4a04,0xc4e00,0xc5504,0xc5700,0xc5801,0xc5b00,0xc5d01,0xc5e00,0xc6001,0xc6204,0xc6400,
0xc6642,0xc7000,0xc7708,0xc7842,0xc7f10,0xc8001,0xc8104,0xc8408,0xc8501,0xc8d00,0xc8e01,0xc9100,
0xc9201,0xca900,0xcaa01,0xcb400,0xcb501,0xcba00,0xcbc04,0xcbd01,0xcbe04,0xcc500,0xcc604,0xcc900,
0xcca04,0xcce00,0xcd504,0xcd700,0xcdd01,0xcdf00,0xce001,0xce204,0xce400,0xce642,0xcf000,0xcf101,
0xcf304,0xcf400,0xd0004,0xd0401,0xd0d00,0xd0e01,0xd1100,0xd1201,0xd3b04,0xd3d01,0xd3e04,0xd4500,
0xd4604,0xd4900,0xd4a04,0xd4e01,0xd4f10,0xd5000,0xd5401,0xd5704,0xd5842,0xd5f01,0xd6204,0xd6400,
0xd6642,0xd7910,0xd7a01,0xd8000,0xd8104,0xd8400,0xd8501,0xd9700,0xd9a01,0xdb200,0xdb301,0xdbc00,
0xdbd01,0xdbe00,0xdc001,0xdc700,0xdca04,0xdcb00,0xdcf04,0xdd500,0xdd604,0xdd700,0xdd804,0xde000,
0xde642,0xdf000,0xdf204,0xdf408,0xdf500,0xe0101,0xe3104,0xe3201,0xe3404,0xe3b00,0xe3f10,0xe4001,
0xe4704,0xe4f08,0xe5042,0xe5a08,0xe5c00,0xe8101,0xe8300,0xe8401,0xe8500,0xe8601,0xe8b00,0xe8c01,
0xea400,0xea501,0xea600,0xea701,0xeb104,0xeb201,0xeb404,0xebd01,0xebe00,0xec001,0xec500,0xec601,
0xec700,0xec804,0xecf00,0xed042,0xeda00,0xedc01,0xee000,0xf0001,0xf0110,0xf0408,0xf1310,0xf1408,
0xf1510,0xf1804,0xf1a10,0xf2042,0xf3410,0xf3504,0xf3610,0xf3704,0xf3810,0xf3904,0xf3a08,0xf3e04,
0xf4001,0xf4800,0xf4901,0xf6d00,0xf7104,0xf8508,0xf8604,0xf8801,0xf8d04,0xf9800,0xf9904,0xfbd00,
0xfbe10,0xfc604,0xfc710,0xfcd00,0xfce10,0xfd008,0xfd510,0xfd908,0xfdb00,0x100001,0x102b04,0x103f01,
0x104042,0x104a08,0x105001,0x105604,0x105a01,0x105e04,0x106101,0x106204,0x106501,0x106704,0x106e01,
0x107104,0x107501,0x108204,0x108e01,0x108f04,0x109042,0x109a04,0x109e10,0x10a001,0x10c600,0x10c701,
0x10c800,0x10cd01,0x10ce00,0x10d001,0x10fb08,0x10fc01,0x124900,0x124a01,0x124e00,0x125001,0x125700,
0x125801,0x125900,0x125a01,0x125e00,0x126001,0x128900,0x128a01,0x128e00,0x129001,0x12b100,0x12b201,
0x12b600,0x12b801,0x12bf00,0x12c001,0x12c100,0x12c201,0x12c600,0x12c801,0x12d700,0x12d801,0x131100,
0x131201,0x131600,0x131801,0x135b00,0x135d04,0x136008,0x136942,0x137d00,0x138001,0x139010,0x139a00,
0x13a001,0x13f600,0x13f801,0x13fe00,0x140008,0x140101,0x166d10,0x166e08,0x166f01,0x168020,0x168101,
0x169b08,0x169d00,0x16a001,0x16eb08,0x16ee42,0x16f101,0x16f900,0x170001,0x171204,0x171600,0x171f01,
0x173204,0x173508,0x173700,0x174001,0x175204,0x175400,0x176001,0x176d00,0x176e01,0x177100,0x177204,
0x177400,0x178001,0x17b404,0x17d408,0x17d701,0x17d808,0x17db10,0x17dc01,0x17dd04,0x17de00,0x17e042,
0x17ea00,0x17f042,0x17fa00,0x180008,0x180b04,0x180e00,0x180f04,0x181042,0x181a00,0x182001,0x187900,
0x188001,0x188504,0x188701,0x18a904,0x18aa01,0x18ab00,0x18b001,0x18f600,0x190001,0x191f00,0x192004,
0x192c00,0x193004,0x193c00,0x194010,0x194100,0x194408,0x194642,0x195001,0x196e00,0x197001,0x197500,
0x198001,0x19ac00,0x19b001,0x19ca00,0x19d042,0x19db00,0x19de10,0x1a0001,0x1a1704,0x1a1c00,0x1a1e08,
0x1a2001,0x1a5504,0x1a5f00,0x1a6004,0x1a7d00,0x1a7f04,0x1a8042,0x1a8a00,0x1a9042,0x1a9a00,0x1aa008,
0x1aa701,0x1aa808,0x1aae00,0x1ab004,0x1acf00,0x1b0004,0x1b0501,0x1b3404,0x1b4501,0x1b4d00,0x1b4e08,
0x1b5042,0x1b5a08,0x1b6110,0x1b6b04,0x1b7410,0x1b7d08,0x1b8004,0x1b8301,0x1ba104,0x1bae01,0x1bb042,
0x1bba01,0x1be604,0x1bf400,0x1bfc08,0x1c0001,0x1c2404,0x1c3800,0x1c3b08,0x1c4042,0x1c4a00,0x1c4d01,
0x1c5042,0x1c5a01,0x1c7e08,0x1c8001,0x1c8b00,0x1c9001,0x1cbb00,0x1cbd01,0x1cc008,0x1cc800,0x1cd004,
0x1cd308,0x1cd404,0x1ce901,0x1ced04,0x1cee01,0x1cf404,0x1cf501,0x1cf704,0x1cfa01,0x1cfb00,0x1d0001,
0x1dc004,0x1e0001,0x1f1600,0x1f1801,0x1f1e00,0x1f2001,0x1f4600,0x1f4801,0x1f4e00,0x1f5001,0x1f5800,
0x1f5901,0x1f5a00,0x1f5b01,0x1f5c00,0x1f5d01,0x1f5e00,0x1f5f01,0x1f7e00,0x1f8001,0x1fb500,0x1fb601,
0x1fbd10,0x1fbe01,0x1fbf10,0x1fc201,0x1fc500,0x1fc601,0x1fcd10,0x1fd001,0x1fd400,0x1fd601,0x1fdc00,
0x1fdd10,0x1fe001,0x1fed10,0x1ff000,0x1ff201,0x1ff500,0x1ff601,0x1ffd10,0x1fff00,0x200020,0x200b00,
0x201008,0x202820,0x202a00,0x202f20,0x203008,0x204410,0x204508,0x205210,0x205308,0x205f20,0x206000,
0x207042,0x207101,0x207200,0x207442,0x207a10,0x207d08,0x207f01,0x208042,0x208a10,0x208d08,0x208f00,
0x209001,0x209d00,0x20a010,0x20c100,0x20d004,0x20f100,0x210010,0x210201,0x210310,0x210701,0x210810,
0x210a01,0x211410,0x211501,0x211610,0x211901,0x211e10,0x212401,0x212510,0x212601,0x212710,0x212801,
0x212910,0x212a01,0x212e10,0x212f01,0x213a10,0x213c01,0x214010,0x214501,0x214a10,0x214e01,0x214f10,
0x215042,0x218301,0x218542,0x218a10,0x218c00,0x219010,0x230808,0x230c10,0x232908,0x232b10,0x242a00,
0x244010,0x244b00,0x246042,0x249c10,0x24ea42,0x250010,0x276808,0x277642,0x279410,0x27c508,0x27c710,
0x27e608,0x27f010,0x298308,0x299910,0x29d808,0x29dc10,0x29fc08,0x29fe10,0x2b7400,0x2b7610,0x2b9600,
0x2b9710,0x2c0001,0x2ce510,0x2ceb01,0x2cef04,0x2cf201,0x2cf400,0x2cf908,0x2cfd42,0x2cfe08,0x2d0001,
0x2d2600,0x2d2701,0x2d2800,0x2d2d01,0x2d2e00,0x2d3001,0x2d6800,0x2d6f01,0x2d7008,0x2d7100,0x2d7f04,
0x2d8001,0x2d9700,0x2da001,0x2da700,0x2da801,0x2daf00,0x2db001,0x2db700,0x2db801,0x2dbf00,0x2dc001,
0x2dc700,0x2dc801,0x2dcf00,0x2dd001,0x2dd700,0x2dd801,0x2ddf00,0x2de004,0x2e0008,0x2e2f01,0x2e3008,
0x2e5010,0x2e5208,0x2e5e00,0x2e8010,0x2e9a00,0x2e9b10,0x2ef400,0x2f0010,0x2fd600,0x2ff010,0x300020,
0x300108,0x300410,0x300501,0x300742,0x300808,0x301210,0x301408,0x302010,0x302142,0x302a04,0x303008,
0x303101,0x303610,0x303842,0x303b01,0x303d08,0x303e10,0x304000,0x304101,0x309700,0x309904,0x309b10,
0x309d01,0x30a008,0x30a101,0x30fb08,0x30fc01,0x310000,0x310501,0x313000,0x313101,0x318f00,0x319010,
0x319242,0x319610,0x31a001,0x31c010,0x31e600,0x31ef10,0x31f001,0x320010,0x321f00,0x322042,0x322a10,
0x324842,0x325010,0x325142,0x326010,0x328042,0x328a10,0x32b142,0x32c010,0x340001,0x4dc010,0x4e0001,
0xa48d00,0xa49010,0xa4c700,0xa4d001,0xa4fe08,0xa50001,0xa60d08,0xa61001,0xa62042,0xa62a01,0xa62c00,
0xa64001,0xa66f04,0xa67308,0xa67404,0xa67e08,0xa67f01,0xa69e04,0xa6a001,0xa6e642,0xa6f004,0xa6f208,
0xa6f800,0xa70010,0xa71701,0xa72010,0xa72201,0xa78910,0xa78b01,0xa7ce00,0xa7d001,0xa7d200,0xa7d301,
0xa7d400,0xa7d501,0xa7dd00,0xa7f201,0xa80204,0xa80301,0xa80604,0xa80701,0xa80b04,0xa80c01,0xa82304,
0xa82810,0xa82c04,0xa82d00,0xa83042,0xa83610,0xa83a00,0xa84001,0xa87408,0xa87800,0xa88004,0xa88201,
0xa8b404,0xa8c600,0xa8ce08,0xa8d042,0xa8da00,0xa8e004,0xa8f201,0xa8f808,0xa8fb01,0xa8fc08,0xa8fd01,
0xa8ff04,0xa90042,0xa90a01,0xa92604,0xa92e08,0xa93001,0xa94704,0xa95400,0xa95f08,0xa96001,0xa97d00,
0xa98004,0xa98401,0xa9b304,0xa9c108,0xa9ce00,0xa9cf01,0xa9d042,0xa9da00,0xa9de08,0xa9e001,0xa9e504,
0xa9e601,0xa9f042,0xa9fa01,0xa9ff00,0xaa0001,0xaa2904,0xaa3700,0xaa4001,0xaa4304,0xaa4401,0xaa4c04,
0xaa4e00,0xaa5042,0xaa5a00,0xaa5c08,0xaa6001,0xaa7710,0xaa7a01,0xaa7b04,0xaa7e01,0xaab004,0xaab101,
0xaab204,0xaab501,0xaab704,0xaab901,0xaabe04,0xaac001,0xaac104,0xaac201,0xaac300,0xaadb01,0xaade08,
0xaae001,0xaaeb04,0xaaf008,0xaaf201,0xaaf504,0xaaf700,0xab0101,0xab0700,0xab0901,0xab0f00,0xab1101,
0xab1700,0xab2001,0xab2700,0xab2801,0xab2f00,0xab3001,0xab5b10,0xab5c01,0xab6a10,0xab6c00,0xab7001,
0xabe304,0xabeb08,0xabec04,0xabee00,0xabf042,0xabfa00,0xac0001,0xd7a400,0xd7b001,0xd7c700,0xd7cb01,
0xd7fc00,0xf90001,0xfa6e00,0xfa7001,0xfada00,0xfb0001,0xfb0700,0xfb1301,0xfb1800,0xfb1d01,0xfb1e04,
0xfb1f01,0xfb2910,0xfb2a01,0xfb3700,0xfb3801,0xfb3d00,0xfb3e01,0xfb3f00,0xfb4001,0xfb4200,0xfb4301,
0xfb4500,0xfb4601,0xfbb210,0xfbc300,0xfbd301,0xfd3e08,0xfd4010,0xfd5001,0xfd9000,0xfd9201,0xfdc800,
0xfdcf10,0xfdd000,0xfdf001,0xfdfc10,0xfe0004,0xfe1008,0xfe1a00,0xfe2004,0xfe3008,0xfe5300,0xfe5408,
0xfe6210,0xfe6308,0xfe6410,0xfe6700,0xfe6808,0xfe6910,0xfe6a08,0xfe6c00,0xfe7001,0xfe7500,0xfe7601,
0xfefd00,0xff0108,0xff0410,0xff0508,0xff0b10,0xff0c08,0xff1042,0xff1a08,0xff1c10,0xff1f08,0xff2101,
0xff3b08,0xff3e10,0xff3f08,0xff4010,0xff4101,0xff5b08,0xff5c10,0xff5d08,0xff5e10,0xff5f08,0xff6601,
0xffbf00,0xffc201,0xffc800,0xffca01,0xffd000,0xffd201,0xffd800,0xffda01,0xffdd00,0xffe010,0xffe700,
0xffe810,0xffef00,0xfffc10,0xfffe00,0x1000001,0x1000c00,0x1000d01,0x1002700,0x1002801,0x1003b00,
0x1003c01,0x1003e00,0x1003f01,0x1004e00,0x1005001,0x1005e00,0x1008001,0x100fb00,0x1010008,
0x1010300,0x1010742,0x1013400,0x1013710,0x1014042,0x1017910,0x1018a42,0x1018c10,0x1018f00,
0x1019010,0x1019d00,0x101a010,0x101a100,0x101d010,0x101fd04,0x101fe00,0x1028001,0x1029d00,
0x102a001,0x102d100,0x102e004,0x102e142,0x102fc00,0x1030001,0x1032042,0x1032400,0x1032d01,
0x1034142,0x1034201,0x1034a42,0x1034b00,0x1035001,0x1037604,0x1037b00,0x1038001,0x1039e00,
0x1039f08,0x103a001,0x103c400,0x103c801,0x103d008,0x103d142,0x103d600,0x1040001,0x1049e00,
0x104a042,0x104aa00,0x104b001,0x104d400,0x104d801,0x104fc00,0x1050001,0x1052800,0x1053001,
0x1056400,0x1056f08,0x1057001,0x1057b00,0x1057c01,0x1058b00,0x1058c01,0x1059300,0x1059401,
0x1059600,0x1059701,0x105a200,0x105a301,0x105b200,0x105b301,0x105ba00,0x105bb01,0x105bd00,
0x105c001,0x105f400,0x1060001,0x1073700,0x1074001,0x1075600,0x1076001,0x1076800,0x1078001,
0x1078600,0x1078701,0x107b100,0x107b201,0x107bb00,0x1080001,0x1080600,0x1080801,0x1080900,
0x1080a01,0x1083600,0x1083701,0x1083900,0x1083c01,0x1083d00,0x1083f01,0x1085600,0x1085708,
0x1085842,0x1086001,0x1087710,0x1087942,0x1088001,0x1089f00,0x108a742,0x108b000,0x108e001,
0x108f300,0x108f401,0x108f600,0x108fb42,0x1090001,0x1091642,0x1091c00,0x1091f08,0x1092001,
0x1093a00,0x1093f08,0x1094000,0x1098001,0x109b800,0x109bc42,0x109be01,0x109c042,0x109d000,
0x109d242,0x10a0001,0x10a0104,0x10a0400,0x10a0504,0x10a0700,0x10a0c04,0x10a1001,0x10a1400,
0x10a1501,0x10a1800,0x10a1901,0x10a3600,0x10a3804,0x10a3b00,0x10a3f04,0x10a4042,0x10a4900,
0x10a5008,0x10a5900,0x10a6001,0x10a7d42,0x10a7f08,0x10a8001,0x10a9d42,0x10aa000,0x10ac001,
0x10ac810,0x10ac901,0x10ae504,0x10ae700,0x10aeb42,0x10af008,0x10af700,0x10b0001,0x10b3600,
0x10b3908,0x10b4001,0x10b5600,0x10b5842,0x10b6001,0x10b7300,0x10b7842,0x10b8001,0x10b9200,
0x10b9908,0x10b9d00,0x10ba942,0x10bb000,0x10c0001,0x10c4900,0x10c8001,0x10cb300,0x10cc001,
0x10cf300,0x10cfa42,0x10d0001,0x10d2404,0x10d2800,0x10d3042,0x10d3a00,0x10d4042,0x10d4a01,
0x10d6600,0x10d6904,0x10d6e08,0x10d6f01,0x10d8600,0x10d8e10,0x10d9000,0x10e6042,0x10e7f00,
0x10e8001,0x10eaa00,0x10eab04,0x10ead08,0x10eae00,0x10eb001,0x10eb200,0x10ec201,0x10ec500,
0x10efc04,0x10f0001,0x10f1d42,0x10f2701,0x10f2800,0x10f3001,0x10f4604,0x10f5142,0x10f5508,
0x10f5a00,0x10f7001,0x10f8204,0x10f8608,0x10f8a00,0x10fb001,0x10fc542,0x10fcc00,0x10fe001,
0x10ff700,0x1100004,0x1100301,0x1103804,0x1104708,0x1104e00,0x1105242,0x1107004,0x1107101,
0x1107304,0x1107501,0x1107600,0x1107f04,0x1108301,0x110b004,0x110bb08,0x110bd00,0x110be08,
0x110c204,0x110c300,0x110d001,0x110e900,0x110f042,0x110fa00,0x1110004,0x1110301,0x1112704,
0x1113500,0x1113642,0x1114008,0x1114401,0x1114504,0x1114701,0x1114800,0x1115001,0x1117304,
0x1117408,0x1117601,0x1117700,0x1118004,0x1118301,0x111b304,0x111c101,0x111c508,0x111c904,
0x111cd08,0x111ce04,0x111d042,0x111da01,0x111db08,0x111dc01,0x111dd08,0x111e000,0x111e142,
0x111f500,0x1120001,0x1121200,0x1121301,0x1122c04,0x1123808,0x1123e04,0x1123f01,0x1124104,
0x1124200,0x1128001,0x1128700,0x1128801,0x1128900,0x1128a01,0x1128e00,0x1128f01,0x1129e00,
0x1129f01,0x112a908,0x112aa00,0x112b001,0x112df04,0x112eb00,0x112f042,0x112fa00,0x1130004,
0x1130400,0x1130501,0x1130d00,0x1130f01,0x1131100,0x1131301,0x1132900,0x1132a01,0x1133100,
0x1133201,0x1133400,0x1133501,0x1133a00,0x1133b04,0x1133d01,0x1133e04,0x1134500,0x1134704,
0x1134900,0x1134b04,0x1134e00,0x1135001,0x1135100,0x1135704,0x1135800,0x1135d01,0x1136204,
0x1136400,0x1136604,0x1136d00,0x1137004,0x1137500,0x1138001,0x1138a00,0x1138b01,0x1138c00,
0x1138e01,0x1138f00,0x1139001,0x113b600,0x113b701,0x113b804,0x113c100,0x113c204,0x113c300,
0x113c504,0x113c600,0x113c704,0x113cb00,0x113cc04,0x113d101,0x113d204,0x113d301,0x113d408,
0x113d600,0x113d708,0x113d900,0x113e104,0x113e300,0x1140001,0x1143504,0x1144701,0x1144b08,
0x1145042,0x1145a08,0x1145c00,0x1145d08,0x1145e04,0x1145f01,0x1146200,0x1148001,0x114b004,
0x114c401,0x114c608,0x114c701,0x114c800,0x114d042,0x114da00,0x1158001,0x115af04,0x115b600,
0x115b804,0x115c108,0x115d801,0x115dc04,0x115de00,0x1160001,0x1163004,0x1164108,0x1164401,
0x1164500,0x1165042,0x1165a00,0x1166008,0x1166d00,0x1168001,0x116ab04,0x116b801,0x116b908,
0x116ba00,0x116c042,0x116ca00,0x116d042,0x116e400,0x1170001,0x1171b00,0x1171d04,0x1172c00,
0x1173042,0x1173c08,0x1173f10,0x1174001,0x1174700,0x1180001,0x1182c04,0x1183b08,0x1183c00,
0x118a001,0x118e042,0x118f300,0x118ff01,0x1190700,0x1190901,0x1190a00,0x1190c01,0x1191400,
0x1191501,0x1191700,0x1191801,0x1193004,0x1193600,0x1193704,0x1193900,0x1193b04,0x1193f01,
0x1194004,0x1194101,0x1194204,0x1194408,0x1194700,0x1195042,0x1195a00,0x119a001,0x119a800,
0x119aa01,0x119d104,0x119d800,0x119da04,0x119e101,0x119e208,0x119e301,0x119e404,0x119e500,
0x11a0001,0x11a0104,0x11a0b01,0x11a3304,0x11a3a01,0x11a3b04,0x11a3f08,0x11a4704,0x11a4800,
0x11a5001,0x11a5104,0x11a5c01,0x11a8a04,0x11a9a08,0x11a9d01,0x11a9e08,0x11aa300,0x11ab001,
0x11af900,0x11b0008,0x11b0a00,0x11bc001,0x11be108,0x11be200,0x11bf042,0x11bfa00,0x11c0001,
0x11c0900,0x11c0a01,0x11c2f04,0x11c3700,0x11c3804,0x11c4001,0x11c4108,0x11c4600,0x11c5042,
0x11c6d00,0x11c7008,0x11c7201,0x11c9000,0x11c9204,0x11ca800,0x11ca904,0x11cb700,0x11d0001,
0x11d0700,0x11d0801,0x11d0a00,0x11d0b01,0x11d3104,0x11d3700,0x11d3a04,0x11d3b00,0x11d3c04,
0x11d3e00,0x11d3f04,0x11d4601,0x11d4704,0x11d4800,0x11d5042,0x11d5a00,0x11d6001,0x11d6600,
0x11d6701,0x11d6900,0x11d6a01,0x11d8a04,0x11d8f00,0x11d9004,0x11d9200,0x11d9304,0x11d9801,
0x11d9900,0x11da042,0x11daa00,0x11de040,0x11dea00,0x11ee001,0x11ef304,0x11ef708,0x11ef900,
0x11f0004,0x11f0201,0x11f0304,0x11f0401,0x11f1100,0x11f1201,0x11f3404,0x11f3b00,0x11f3e04,
0x11f4308,0x11f5042,0x11f5a04,0x11f5b00,0x11fb001,0x11fb100,0x11fc042,0x11fd510,0x11ff200,
0x11fff08,0x1200001,0x1239a00,0x1240042,0x1246f00,0x1247008,0x1247500,0x1248001,0x1254400,
0x12f9001,0x12ff108,0x12ff300,0x1300001,0x1343000,0x1344004,0x1344101,0x1344704,0x1345600,
0x1346001,0x143fb00,0x1440001,0x1464700,0x1610001,0x1611e04,0x1613042,0x1613a00,0x1680001,
0x16a3900,0x16a4001,0x16a5f00,0x16a6042,0x16a6a00,0x16a6e08,0x16a7001,0x16abf00,0x16ac042,
0x16aca00,0x16ad001,0x16aee00,0x16af004,0x16af508,0x16af600,0x16b0001,0x16b3004,0x16b3708,
0x16b3c10,0x16b4001,0x16b4408,0x16b4510,0x16b4600,0x16b5042,0x16b5a00,0x16b5b42,0x16b6200,
0x16b6301,0x16b7800,0x16b7d01,0x16b9000,0x16d4001,0x16d6d08,0x16d7042,0x16d7a00,0x16e4001,
0x16e8042,0x16e9708,0x16e9b00,0x16f0001,0x16f4b00,0x16f4f04,0x16f5001,0x16f5104,0x16f8800,
0x16f8f04,0x16f9301,0x16fa000,0x16fe001,0x16fe208,0x16fe301,0x16fe404,0x16fe500,0x16ff004,
0x16ff200,0x16ff440,0x16ff700,0x1700001,0x187f800,0x1880001,0x18cd600,0x18cff01,0x18d0900,
0x1aff001,0x1aff400,0x1aff501,0x1affc00,0x1affd01,0x1afff00,0x1b00001,0x1b12300,0x1b13201,
0x1b13300,0x1b15001,0x1b15300,0x1b15501,0x1b15600,0x1b16401,0x1b16800,0x1b17001,0x1b2fc00,
0x1bc0001,0x1bc6b00,0x1bc7001,0x1bc7d00,0x1bc8001,0x1bc8900,0x1bc9001,0x1bc9a00,0x1bc9c10,
0x1bc9d04,0x1bc9f08,0x1bca000,0x1cc0010,0x1ccf042,0x1ccfa00,0x1cd0010,0x1ceb400,0x1cf0004,
0x1cf2e00,0x1cf3004,0x1cf4700,0x1cf5010,0x1cfc400,0x1d00010,0x1d0f600,0x1d10010,0x1d12700,
0x1d12910,0x1d16504,0x1d16a10,0x1d16d04,0x1d17300,0x1d17b04,0x1d18310,0x1d18504,0x1d18c10,
0x1d1aa04,0x1d1ae10,0x1d1eb00,0x1d20010,0x1d24204,0x1d24510,0x1d24600,0x1d2c042,0x1d2d400,
0x1d2e042,0x1d2f400,0x1d30010,0x1d35700,0x1d36042,0x1d37900,0x1d40001,0x1d45500,0x1d45601,
0x1d49d00,0x1d49e01,0x1d4a000,0x1d4a201,0x1d4a300,0x1d4a501,0x1d4a700,0x1d4a901,0x1d4ad00,
0x1d4ae01,0x1d4ba00,0x1d4bb01,0x1d4bc00,0x1d4bd01,0x1d4c400,0x1d4c501,0x1d50600,0x1d50701,
0x1d50b00,0x1d50d01,0x1d51500,0x1d51601,0x1d51d00,0x1d51e01,0x1d53a00,0x1d53b01,0x1d53f00,
0x1d54001,0x1d54500,0x1d54601,0x1d54700,0x1d54a01,0x1d55100,0x1d55201,0x1d6a600,0x1d6a801,
0x1d6c110,0x1d6c201,0x1d6db10,0x1d6dc01,0x1d6fb10,0x1d6fc01,0x1d71510,0x1d71601,0x1d73510,
0x1d73601,0x1d74f10,0x1d75001,0x1d76f10,0x1d77001,0x1d78910,0x1d78a01,0x1d7a910,0x1d7aa01,
0x1d7c310,0x1d7c401,0x1d7cc00,0x1d7ce42,0x1d80010,0x1da0004,0x1da3710,0x1da3b04,0x1da6d10,
0x1da7504,0x1da7610,0x1da8404,0x1da8510,0x1da8708,0x1da8c00,0x1da9b04,0x1daa000,0x1daa104,
0x1dab000,0x1df0001,0x1df1f00,0x1df2501,0x1df2b00,0x1e00004,0x1e00700,0x1e00804,0x1e01900,
0x1e01b04,0x1e02200,0x1e02304,0x1e02500,0x1e02604,0x1e02b00,0x1e03001,0x1e06e00,0x1e08f04,
0x1e09000,0x1e10001,0x1e12d00,0x1e13004,0x1e13701,0x1e13e00,0x1e14042,0x1e14a00,0x1e14e01,
0x1e14f10,0x1e15000,0x1e29001,0x1e2ae04,0x1e2af00,0x1e2c001,0x1e2ec04,0x1e2f042,0x1e2fa00,
0x1e2ff10,0x1e30000,0x1e4d001,0x1e4ec04,0x1e4f042,0x1e4fa00,0x1e5d001,0x1e5ee04,0x1e5f001,
0x1e5f142,0x1e5fb00,0x1e5ff08,0x1e60000,0x1e7e001,0x1e7e700,0x1e7e801,0x1e7ec00,0x1e7ed01,
0x1e7ef00,0x1e7f001,0x1e7ff00,0x1e80001,0x1e8c500,0x1e8c742,0x1e8d004,0x1e8d700,0x1e90001,
0x1e94404,0x1e94b01,0x1e94c00,0x1e95042,0x1e95a00,0x1e95e08,0x1e96000,0x1ec7142,0x1ecac10,
0x1ecad42,0x1ecb010,0x1ecb142,0x1ecb500,0x1ed0142,0x1ed2e10,0x1ed2f42,0x1ed3e00,0x1ee0001,
0x1ee0400,0x1ee0501,0x1ee2000,0x1ee2101,0x1ee2300,0x1ee2401,0x1ee2500,0x1ee2701,0x1ee2800,
0x1ee2901,0x1ee3300,0x1ee3401,0x1ee3800,0x1ee3901,0x1ee3a00,0x1ee3b01,0x1ee3c00,0x1ee4201,
0x1ee4300,0x1ee4701,0x1ee4800,0x1ee4901,0x1ee4a00,0x1ee4b01,0x1ee4c00,0x1ee4d01,0x1ee5000,
0x1ee5101,0x1ee5300,0x1ee5401,0x1ee5500,0x1ee5701,0x1ee5800,0x1ee5901,0x1ee5a00,0x1ee5b01,
0x1ee5c00,0x1ee5d01,0x1ee5e00,0x1ee5f01,0x1ee6000,0x1ee6101,0x1ee6300,0x1ee6401,0x1ee6500,
0x1ee6701,0x1ee6b00,0x1ee6c01,0x1ee7300,0x1ee7401,0x1ee7800,0x1ee7901,0x1ee7d00,0x1ee7e01,
0x1ee7f00,0x1ee8001,0x1ee8a00,0x1ee8b01,0x1ee9c00,0x1eea101,0x1eea400,0x1eea501,0x1eeaa00,
0x1eeab01,0x1eebc00,0x1eef010,0x1eef200,0x1f00010,0x1f02c00,0x1f03010,0x1f09400,0x1f0a010,
0x1f0af00,0x1f0b110,0x1f0c000,0x1f0c110,0x1f0d000,0x1f0d110,0x1f0f600,0x1f10042,0x1f10d10,
0x1f1ae00,0x1f1e610,0x1f20300,0x1f21010,0x1f23c00,0x1f24010,0x1f24900,0x1f25010,0x1f25200,
0x1f26010,0x1f26600,0x1f30010,0x1f6d800,0x1f6dc10,0x1f6ed00,0x1f6f010,0x1f6fd00,0x1f70010,
0x1f77700,0x1f77b10,0x1f7da00,0x1f7e010,0x1f7ec00,0x1f7f010,0x1f7f100,0x1f80010,0x1f80c00,
0x1f81010,0x1f84800,0x1f85010,0x1f85a00,0x1f86010,0x1f88800,0x1f89010,0x1f8ae00,0x1f8b010,
0x1f8bc00,0x1f8c010,0x1f8c200,0x1f90010,0x1fa5400,0x1fa6010,0x1fa6e00,0x1fa7010,0x1fa7d00,
0x1fa8010,0x1fa8a00,0x1fa8f10,0x1fac700,0x1face10,0x1fadd00,0x1fadf10,0x1faea00,0x1faf010,
0x1faf900,0x1fb0010,0x1fb9300,0x1fb9410,0x1fbf042,0x1fbfa00,0x2000001,0x2a6e000,0x2a70001,
0x2b73a00,0x2b74001,0x2b81e00,0x2b82001,0x2cea200,0x2ceb001,0x2ebe100,0x2ebf001,0x2ee5e00,
0x2f80001,0x2fa1e00,0x3000001,0x3134b00,0x3135001,0x323b000,0xe010004,0xe01f000,
};
/* NFC, Unicode 9.0.0 as the reference's normalizer has it: canonical decompositions (code point,
   first, second | 1 << 31 for a primary composite; Hangul syllables are computed), and runs of
   (first code point << 8) | canonical combining class */
static const uint32_t ds__uc_decomp[6180] = {
0xc0,0x41,0x80000300,0xc1,0x41,0x80000301,0xc2,0x41,0x80000302,0xc3,0x41,0x80000303,0xc4,0x41,
0x80000308,0xc5,0x41,0x8000030a,0xc7,0x43,0x80000327,0xc8,0x45,0x80000300,0xc9,0x45,0x80000301,
0xca,0x45,0x80000302,0xcb,0x45,0x80000308,0xcc,0x49,0x80000300,0xcd,0x49,0x80000301,0xce,0x49,
0x80000302,0xcf,0x49,0x80000308,0xd1,0x4e,0x80000303,0xd2,0x4f,0x80000300,0xd3,0x4f,0x80000301,
0xd4,0x4f,0x80000302,0xd5,0x4f,0x80000303,0xd6,0x4f,0x80000308,0xd9,0x55,0x80000300,0xda,0x55,
0x80000301,0xdb,0x55,0x80000302,0xdc,0x55,0x80000308,0xdd,0x59,0x80000301,0xe0,0x61,0x80000300,
0xe1,0x61,0x80000301,0xe2,0x61,0x80000302,0xe3,0x61,0x80000303,0xe4,0x61,0x80000308,0xe5,0x61,
0x8000030a,0xe7,0x63,0x80000327,0xe8,0x65,0x80000300,0xe9,0x65,0x80000301,0xea,0x65,0x80000302,
0xeb,0x65,0x80000308,0xec,0x69,0x80000300,0xed,0x69,0x80000301,0xee,0x69,0x80000302,0xef,0x69,
0x80000308,0xf1,0x6e,0x80000303,0xf2,0x6f,0x80000300,0xf3,0x6f,0x80000301,0xf4,0x6f,0x80000302,
0xf5,0x6f,0x80000303,0xf6,0x6f,0x80000308,0xf9,0x75,0x80000300,0xfa,0x75,0x80000301,0xfb,0x75,
0x80000302,0xfc,0x75,0x80000308,0xfd,0x79,0x80000301,0xff,0x79,0x80000308,0x100,0x41,0x80000304,
0x101,0x61,0x80000304,0x102,0x41,0x80000306,0x103,0x61,0x80000306,0x104,0x41,0x80000328,0x105,0x61,
0x80000328,0x106,0x43,0x80000301,0x107,0x63,0x80000301,0x108,0x43,0x80000302,0x109,0x63,0x80000302,
0x10a,0x43,0x80000307,0x10b,0x63,0x80000307,0x10c,0x43,0x8000030c,0x10d,0x63,0x8000030c,0x10e,0x44,
0x8000030c,0x10f,0x64,0x8000030c,0x112,0x45,0x80000304,0x113,0x65,0x80000304,0x114,0x45,0x80000306,
0x115,0x65,0x80000306,0x116,0x45,0x80000307,0x117,0x65,0x80000307,0x118,0x45,0x80000328,0x119,0x65,
0x80000328,0x11a,0x45,0x8000030c,0x11b,0x65,0x8000030c,0x11c,0x47,0x80000302,0x11d,0x67,0x80000302,
0x11e,0x47,0x80000306,0x11f,0x67,0x80000306,0x120,0x47,0x80000307,0x121,0x67,0x80000307,0x122,0x47,
0x80000327,0x123,0x67,0x80000327,0x124,0x48,0x80000302,0x125,0x68,0x80000302,0x128,0x49,0x80000303,
0x129,0x69,0x80000303,0x12a,0x49,0x80000304,0x12b,0x69,0x80000304,0x12c,0x49,0x80000306,0x12d,0x69,
0x80000306,0x12e,0x49,0x80000328,0x12f,0x69,0x80000328,0x130,0x49,0x80000307,0x134,0x4a,0x80000302,
0x135,0x6a,0x80000302,0x136,0x4b,0x80000327,0x137,0x6b,0x80000327,0x139,0x4c,0x80000301,0x13a,0x6c,
0x80000301,0x13b,0x4c,0x80000327,0x13c,0x6c,0x80000327,0x13d,0x4c,0x8000030c,0x13e,0x6c,0x8000030c,
0x143,0x4e,0x80000301,0x144,0x6e,0x80000301,0x145,0x4e,0x80000327,0x146,0x6e,0x80000327,0x147,0x4e,
0x8000030c,0x148,0x6e,0x8000030c,0x14c,0x4f,0x80000304,0x14d,0x6f,0x80000304,0x14e,0x4f,0x80000306,
0x14f,0x6f,0x80000306,0x150,0x4f,0x8000030b,0x151,0x6f,0x8000030b,0x154,0x52,0x80000301,0x155,0x72,
0x80000301,0x156,0x52,0x80000327,0x157,0x72,0x80000327,0x158,0x52,0x8000030c,0x159,0x72,0x8000030c,
0x15a,0x53,0x80000301,0x15b,0x73,0x80000301,0x15c,0x53,0x80000302,0x15d,0x73,0x80000302,0x15e,0x53,
0x80000327,0x15f,0x73,0x80000327,0x160,0x53,0x8000030c,0x161,0x73,0x8000030c,0x162,0x54,0x80000327,
0x163,0x74,0x80000327,0x164,0x54,0x8000030c,0x165,0x74,0x8000030c,0x168,0x55,0x80000303,0x169,0x75,
0x80000303,0x16a,0x55,0x80000304,0x16b,0x75,0x80000304,0x16c,0x55,0x80000306,0x16d,0x75,0x80000306,
0x16e,0x55,0x8000030a,0x16f,0x75,0x8000030a,0x170,0x55,0x8000030b,0x171,0x75,0x8000030b,0x172,0x55,
0x80000328,0x173,0x75,0x80000328,0x174,0x57,0x80000302,0x175,0x77,0x80000302,0x176,0x59,0x80000302,
0x177,0x79,0x80000302,0x178,0x59,0x80000308,0x179,0x5a,0x80000301,0x17a,0x7a,0x80000301,0x17b,0x5a,
0x80000307,0x17c,0x7a,0x80000307,0x17d,0x5a,0x8000030c,0x17e,0x7a,0x8000030c,0x1a0,0x4f,0x8000031b,
0x1a1,0x6f,0x8000031b,0x1af,0x55,0x8000031b,0x1b0,0x75,0x8000031b,0x1cd,0x41,0x8000030c,0x1ce,0x61,
0x8000030c,0x1cf,0x49,0x8000030c,0x1d0,0x69,0x8000030c,0x1d1,0x4f,0x8000030c,0x1d2,0x6f,0x8000030c,
0x1d3,0x55,0x8000030c,0x1d4,0x75,0x8000030c,0x1d5,0xdc,0x80000304,0x1d6,0xfc,0x80000304,0x1d7,0xdc,
0x80000301,0x1d8,0xfc,0x80000301,0x1d9,0xdc,0x8000030c,0x1da,0xfc,0x8000030c,0x1db,0xdc,0x80000300,
0x1dc,0xfc,0x80000300,0x1de,0xc4,0x80000304,0x1df,0xe4,0x80000304,0x1e0,0x226,0x80000304,0x1e1,
0x227,0x80000304,0x1e2,0xc6,0x80000304,0x1e3,0xe6,0x80000304,0x1e6,0x47,0x8000030c,0x1e7,0x67,
0x8000030c,0x1e8,0x4b,0x8000030c,0x1e9,0x6b,0x8000030c,0x1ea,0x4f,0x80000328,0x1eb,0x6f,0x80000328,
0x1ec,0x1ea,0x80000304,0x1ed,0x1eb,0x80000304,0x1ee,0x1b7,0x8000030c,0x1ef,0x292,0x8000030c,0x1f0,
0x6a,0x8000030c,0x1f4,0x47,0x80000301,0x1f5,0x67,0x80000301,0x1f8,0x4e,0x80000300,0x1f9,0x6e,
0x80000300,0x1fa,0xc5,0x80000301,0x1fb,0xe5,0x80000301,0x1fc,0xc6,0x80000301,0x1fd,0xe6,0x80000301,
0x1fe,0xd8,0x80000301,0x1ff,0xf8,0x80000301,0x200,0x41,0x8000030f,0x201,0x61,0x8000030f,0x202,0x41,
0x80000311,0x203,0x61,0x80000311,0x204,0x45,0x8000030f,0x205,0x65,0x8000030f,0x206,0x45,0x80000311,
0x207,0x65,0x80000311,0x208,0x49,0x8000030f,0x209,0x69,0x8000030f,0x20a,0x49,0x80000311,0x20b,0x69,
0x80000311,0x20c,0x4f,0x8000030f,0x20d,0x6f,0x8000030f,0x20e,0x4f,0x80000311,0x20f,0x6f,0x80000311,
0x210,0x52,0x8000030f,0x211,0x72,0x8000030f,0x212,0x52,0x80000311,0x213,0x72,0x80000311,0x214,0x55,
0x8000030f,0x215,0x75,0x8000030f,0x216,0x55,0x80000311,0x217,0x75,0x80000311,0x218,0x53,0x80000326,
0x219,0x73,0x80000326,0x21a,0x54,0x80000326,0x21b,0x74,0x80000326,0x21e,0x48,0x8000030c,0x21f,0x68,
0x8000030c,0x226,0x41,0x80000307,0x227,0x61,0x80000307,0x228,0x45,0x80000327,0x229,0x65,0x80000327,
0x22a,0xd6,0x80000304,0x22b,0xf6,0x80000304,0x22c,0xd5,0x80000304,0x22d,0xf5,0x80000304,0x22e,0x4f,
0x80000307,0x22f,0x6f,0x80000307,0x230,0x22e,0x80000304,0x231,0x22f,0x80000304,0x232,0x59,
0x80000304,0x233,0x79,0x80000304,0x340,0x300,0x0,0x341,0x301,0x0,0x343,0x313,0x0,0x344,0x308,0x301,
0x374,0x2b9,0x0,0x37e,0x3b,0x0,0x385,0xa8,0x80000301,0x386,0x391,0x80000301,0x387,0xb7,0x0,0x388,
0x395,0x80000301,0x389,0x397,0x80000301,0x38a,0x399,0x80000301,0x38c,0x39f,0x80000301,0x38e,0x3a5,
0x80000301,0x38f,0x3a9,0x80000301,0x390,0x3ca,0x80000301,0x3aa,0x399,0x80000308,0x3ab,0x3a5,
0x80000308,0x3ac,0x3b1,0x80000301,0x3ad,0x3b5,0x80000301,0x3ae,0x3b7,0x80000301,0x3af,0x3b9,
0x80000301,0x3b0,0x3cb,0x80000301,0x3ca,0x3b9,0x80000308,0x3cb,0x3c5,0x80000308,0x3cc,0x3bf,
0x80000301,0x3cd,0x3c5,0x80000301,0x3ce,0x3c9,0x80000301,0x3d3,0x3d2,0x80000301,0x3d4,0x3d2,
0x80000308,0x400,0x415,0x80000300,0x401,0x415,0x80000308,0x403,0x413,0x80000301,0x407,0x406,
0x80000308,0x40c,0x41a,0x80000301,0x40d,0x418,0x80000300,0x40e,0x423,0x80000306,0x419,0x418,
0x80000306,0x439,0x438,0x80000306,0x450,0x435,0x80000300,0x451,0x435,0x80000308,0x453,0x433,
0x80000301,0x457,0x456,0x80000308,0x45c,0x43a,0x80000301,0x45d,0x438,0x80000300,0x45e,0x443,
0x80000306,0x476,0x474,0x8000030f,0x477,0x475,0x8000030f,0x4c1,0x416,0x80000306,0x4c2,0x436,
0x80000306,0x4d0,0x410,0x80000306,0x4d1,0x430,0x80000306,0x4d2,0x410,0x80000308,0x4d3,0x430,
0x80000308,0x4d6,0x415,0x80000306,0x4d7,0x435,0x80000306,0x4da,0x4d8,0x80000308,0x4db,0x4d9,
0x80000308,0x4dc,0x416,0x80000308,0x4dd,0x436,0x80000308,0x4de,0x417,0x80000308,0x4df,0x437,
0x80000308,0x4e2,0x418,0x80000304,0x4e3,0x438,0x80000304,0x4e4,0x418,0x80000308,0x4e5,0x438,
0x80000308,0x4e6,0x41e,0x80000308,0x4e7,0x43e,0x80000308,0x4ea,0x4e8,0x80000308,0x4eb,0x4e9,
0x80000308,0x4ec,0x42d,0x80000308,0x4ed,0x44d,0x80000308,0x4ee,0x423,0x80000304,0x4ef,0x443,
0x80000304,0x4f0,0x423,0x80000308,0x4f1,0x443,0x80000308,0x4f2,0x423,0x8000030b,0x4f3,0x443,
0x8000030b,0x4f4,0x427,0x80000308,0x4f5,0x447,0x80000308,0x4f8,0x42b,0x80000308,0x4f9,0x44b,
0x80000308,0x622,0x627,0x80000653,0x623,0x627,0x80000654,0x624,0x648,0x80000654,0x625,0x627,
0x80000655,0x626,0x64a,0x80000654,0x6c0,0x6d5,0x80000654,0x6c2,0x6c1,0x80000654,0x6d3,0x6d2,
0x80000654,0x929,0x928,0x8000093c,0x931,0x930,0x8000093c,0x934,0x933,0x8000093c,0x958,0x915,0x93c,
0x959,0x916,0x93c,0x95a,0x917,0x93c,0x95b,0x91c,0x93c,0x95c,0x921,0x93c,0x95d,0x922,0x93c,0x95e,
0x92b,0x93c,0x95f,0x92f,0x93c,0x9cb,0x9c7,0x800009be,0x9cc,0x9c7,0x800009d7,0x9dc,0x9a1,0x9bc,
0x9dd,0x9a2,0x9bc,0x9df,0x9af,0x9bc,0xa33,0xa32,0xa3c,0xa36,0xa38,0xa3c,0xa59,0xa16,0xa3c,0xa5a,
0xa17,0xa3c,0xa5b,0xa1c,0xa3c,0xa5e,0xa2b,0xa3c,0xb48,0xb47,0x80000b56,0xb4b,0xb47,0x80000b3e,
0xb4c,0xb47,0x80000b57,0xb5c,0xb21,0xb3c,0xb5d,0xb22,0xb3c,0xb94,0xb92,0x80000bd7,0xbca,0xbc6,
0x80000bbe,0xbcb,0xbc7,0x80000bbe,0xbcc,0xbc6,0x80000bd7,0xc48,0xc46,0x80000c56,0xcc0,0xcbf,
0x80000cd5,0xcc7,0xcc6,0x80000cd5,0xcc8,0xcc6,0x80000cd6,0xcca,0xcc6,0x80000cc2,0xccb,0xcca,
0x80000cd5,0xd4a,0xd46,0x80000d3e,0xd4b,0xd47,0x80000d3e,0xd4c,0xd46,0x80000d57,0xdda,0xdd9,
0x80000dca,0xddc,0xdd9,0x80000dcf,0xddd,0xddc,0x80000dca,0xdde,0xdd9,0x80000ddf,0xf43,0xf42,0xfb7,
0xf4d,0xf4c,0xfb7,0xf52,0xf51,0xfb7,0xf57,0xf56,0xfb7,0xf5c,0xf5b,0xfb7,0xf69,0xf40,0xfb5,0xf73,
0xf71,0xf72,0xf75,0xf71,0xf74,0xf76,0xfb2,0xf80,0xf78,0xfb3,0xf80,0xf81,0xf71,0xf80,0xf93,0xf92,
0xfb7,0xf9d,0xf9c,0xfb7,0xfa2,0xfa1,0xfb7,0xfa7,0xfa6,0xfb7,0xfac,0xfab,0xfb7,0xfb9,0xf90,0xfb5,
0x1026,0x1025,0x8000102e,0x1b06,0x1b05,0x80001b35,0x1b08,0x1b07,0x80001b35,0x1b0a,0x1b09,
0x80001b35,0x1b0c,0x1b0b,0x80001b35,0x1b0e,0x1b0d,0x80001b35,0x1b12,0x1b11,0x80001b35,0x1b3b,
0x1b3a,0x80001b35,0x1b3d,0x1b3c,0x80001b35,0x1b40,0x1b3e,0x80001b35,0x1b41,0x1b3f,0x80001b35,
0x1b43,0x1b42,0x80001b35,0x1e00,0x41,0x80000325,0x1e01,0x61,0x80000325,0x1e02,0x42,0x80000307,
0x1e03,0x62,0x80000307,0x1e04,0x42,0x80000323,0x1e05,0x62,0x80000323,0x1e06,0x42,0x80000331,0x1e07,
0x62,0x80000331,0x1e08,0xc7,0x80000301,0x1e09,0xe7,0x80000301,0x1e0a,0x44,0x80000307,0x1e0b,0x64,
0x80000307,0x1e0c,0x44,0x80000323,0x1e0d,0x64,0x80000323,0x1e0e,0x44,0x80000331,0x1e0f,0x64,
0x80000331,0x1e10,0x44,0x80000327,0x1e11,0x64,0x80000327,0x1e12,0x44,0x8000032d,0x1e13,0x64,
0x8000032d,0x1e14,0x112,0x80000300,0x1e15,0x113,0x80000300,0x1e16,0x112,0x80000301,0x1e17,0x113,
0x80000301,0x1e18,0x45,0x8000032d,0x1e19,0x65,0x8000032d,0x1e1a,0x45,0x80000330,0x1e1b,0x65,
0x80000330,0x1e1c,0x228,0x80000306,0x1e1d,0x229,0x80000306,0x1e1e,0x46,0x80000307,0x1e1f,0x66,
0x80000307,0x1e20,0x47,0x80000304,0x1e21,0x67,0x80000304,0x1e22,0x48,0x80000307,0x1e23,0x68,
0x80000307,0x1e24,0x48,0x80000323,0x1e25,0x68,0x80000323,0x1e26,0x48,0x80000308,0x1e27,0x68,
0x80000308,0x1e28,0x48,0x80000327,0x1e29,0x68,0x80000327,0x1e2a,0x48,0x8000032e,0x1e2b,0x68,
0x8000032e,0x1e2c,0x49,0x80000330,0x1e2d,0x69,0x80000330,0x1e2e,0xcf,0x80000301,0x1e2f,0xef,
0x80000301,0x1e30,0x4b,0x80000301,0x1e31,0x6b,0x80000301,0x1e32,0x4b,0x80000323,0x1e33,0x6b,
0x80000323,0x1e34,0x4b,0x80000331,0x1e35,0x6b,0x80000331,0x1e36,0x4c,0x80000323,0x1e37,0x6c,
0x80000323,0x1e38,0x1e36,0x80000304,0x1e39,0x1e37,0x80000304,0x1e3a,0x4c,0x80000331,0x1e3b,0x6c,
0x80000331,0x1e3c,0x4c,0x8000032d,0x1e3d,0x6c,0x8000032d,0x1e3e,0x4d,0x80000301,0x1e3f,0x6d,
0x80000301,0x1e40,0x4d,0x80000307,0x1e41,0x6d,0x80000307,0x1e42,0x4d,0x80000323,0x1e43,0x6d,
0x80000323,0x1e44,0x4e,0x80000307,0x1e45,0x6e,0x80000307,0x1e46,0x4e,0x80000323,0x1e47,0x6e,
0x80000323,0x1e48,0x4e,0x80000331,0x1e49,0x6e,0x80000331,0x1e4a,0x4e,0x8000032d,0x1e4b,0x6e,
0x8000032d,0x1e4c,0xd5,0x80000301,0x1e4d,0xf5,0x80000301,0x1e4e,0xd5,0x80000308,0x1e4f,0xf5,
0x80000308,0x1e50,0x14c,0x80000300,0x1e51,0x14d,0x80000300,0x1e52,0x14c,0x80000301,0x1e53,0x14d,
0x80000301,0x1e54,0x50,0x80000301,0x1e55,0x70,0x80000301,0x1e56,0x50,0x80000307,0x1e57,0x70,
0x80000307,0x1e58,0x52,0x80000307,0x1e59,0x72,0x80000307,0x1e5a,0x52,0x80000323,0x1e5b,0x72,
0x80000323,0x1e5c,0x1e5a,0x80000304,0x1e5d,0x1e5b,0x80000304,0x1e5e,0x52,0x80000331,0x1e5f,0x72,
0x80000331,0x1e60,0x53,0x80000307,0x1e61,0x73,0x80000307,0x1e62,0x53,0x80000323,0x1e63,0x73,
0x80000323,0x1e64,0x15a,0x80000307,0x1e65,0x15b,0x80000307,0x1e66,0x160,0x80000307,0x1e67,0x161,
0x80000307,0x1e68,0x1e62,0x80000307,0x1e69,0x1e63,0x80000307,0x1e6a,0x54,0x80000307,0x1e6b,0x74,
0x80000307,0x1e6c,0x54,0x80000323,0x1e6d,0x74,0x80000323,0x1e6e,0x54,0x80000331,0x1e6f,0x74,
0x80000331,0x1e70,0x54,0x8000032d,0x1e71,0x74,0x8000032d,0x1e72,0x55,0x80000324,0x1e73,0x75,
0x80000324,0x1e74,0x55,0x80000330,0x1e75,0x75,0x80000330,0x1e76,0x55,0x8000032d,0x1e77,0x75,
0x8000032d,0x1e78,0x168,0x80000301,0x1e79,0x169,0x80000301,0x1e7a,0x16a,0x80000308,0x1e7b,0x16b,
0x80000308,0x1e7c,0x56,0x80000303,0x1e7d,0x76,0x80000303,0x1e7e,0x56,0x80000323,0x1e7f,0x76,
0x80000323,0x1e80,0x57,0x80000300,0x1e81,0x77,0x80000300,0x1e82,0x57,0x80000301,0x1e83,0x77,
0x80000301,0x1e84,0x57,0x80000308,0x1e85,0x77,0x80000308,0x1e86,0x57,0x80000307,0x1e87,0x77,
0x80000307,0x1e88,0x57,0x80000323,0x1e89,0x77,0x80000323,0x1e8a,0x58,0x80000307,0x1e8b,0x78,
0x80000307,0x1e8c,0x58,0x80000308,0x1e8d,0x78,0x80000308,0x1e8e,0x59,0x80000307,0x1e8f,0x79,
0x80000307,0x1e90,0x5a,0x80000302,0x1e91,0x7a,0x80000302,0x1e92,0x5a,0x80000323,0x1e93,0x7a,
0x80000323,0x1e94,0x5a,0x80000331,0x1e95,0x7a,0x80000331,0x1e96,0x68,0x80000331,0x1e97,0x74,
0x80000308,0x1e98,0x77,0x8000030a,0x1e99,0x79,0x8000030a,0x1e9b,0x17f,0x80000307,0x1ea0,0x41,
0x80000323,0x1ea1,0x61,0x80000323,0x1ea2,0x41,0x80000309,0x1ea3,0x61,0x80000309,0x1ea4,0xc2,
0x80000301,0x1ea5,0xe2,0x80000301,0x1ea6,0xc2,0x80000300,0x1ea7,0xe2,0x80000300,0x1ea8,0xc2,
0x80000309,0x1ea9,0xe2,0x80000309,0x1eaa,0xc2,0x80000303,0x1eab,0xe2,0x80000303,0x1eac,0x1ea0,
0x80000302,0x1ead,0x1ea1,0x80000302,0x1eae,0x102,0x80000301,0x1eaf,0x103,0x80000301,0x1eb0,0x102,
0x80000300,0x1eb1,0x103,0x80000300,0x1eb2,0x102,0x80000309,0x1eb3,0x103,0x80000309,0x1eb4,0x102,
0x80000303,0x1eb5,0x103,0x80000303,0x1eb6,0x1ea0,0x80000306,0x1eb7,0x1ea1,0x80000306,0x1eb8,0x45,
0x80000323,0x1eb9,0x65,0x80000323,0x1eba,0x45,0x80000309,0x1ebb,0x65,0x80000309,0x1ebc,0x45,
0x80000303,0x1ebd,0x65,0x80000303,0x1ebe,0xca,0x80000301,0x1ebf,0xea,0x80000301,0x1ec0,0xca,
0x80000300,0x1ec1,0xea,0x80000300,0x1ec2,0xca,0x80000309,0x1ec3,0xea,0x80000309,0x1ec4,0xca,
0x80000303,0x1ec5,0xea,0x80000303,0x1ec6,0x1eb8,0x80000302,0x1ec7,0x1eb9,0x80000302,0x1ec8,0x49,
0x80000309,0x1ec9,0x69,0x80000309,0x1eca,0x49,0x80000323,0x1ecb,0x69,0x80000323,0x1ecc,0x4f,
0x80000323,0x1ecd,0x6f,0x80000323,0x1ece,0x4f,0x80000309,0x1ecf,0x6f,0x80000309,0x1ed0,0xd4,
0x80000301,0x1ed1,0xf4,0x80000301,0x1ed2,0xd4,0x80000300,0x1ed3,0xf4,0x80000300,0x1ed4,0xd4,
0x80000309,0x1ed5,0xf4,0x80000309,0x1ed6,0xd4,0x80000303,0x1ed7,0xf4,0x80000303,0x1ed8,0x1ecc,
0x80000302,0x1ed9,0x1ecd,0x80000302,0x1eda,0x1a0,0x80000301,0x1edb,0x1a1,0x80000301,0x1edc,0x1a0,
0x80000300,0x1edd,0x1a1,0x80000300,0x1ede,0x1a0,0x80000309,0x1edf,0x1a1,0x80000309,0x1ee0,0x1a0,
0x80000303,0x1ee1,0x1a1,0x80000303,0x1ee2,0x1a0,0x80000323,0x1ee3,0x1a1,0x80000323,0x1ee4,0x55,
0x80000323,0x1ee5,0x75,0x80000323,0x1ee6,0x55,0x80000309,0x1ee7,0x75,0x80000309,0x1ee8,0x1af,
0x80000301,0x1ee9,0x1b0,0x80000301,0x1eea,0x1af,0x80000300,0x1eeb,0x1b0,0x80000300,0x1eec,0x1af,
0x80000309,0x1eed,0x1b0,0x80000309,0x1eee,0x1af,0x80000303,0x1eef,0x1b0,0x80000303,0x1ef0,0x1af,
0x80000323,0x1ef1,0x1b0,0x80000323,0x1ef2,0x59,0x80000300,0x1ef3,0x79,0x80000300,0x1ef4,0x59,
0x80000323,0x1ef5,0x79,0x80000323,0x1ef6,0x59,0x80000309,0x1ef7,0x79,0x80000309,0x1ef8,0x59,
0x80000303,0x1ef9,0x79,0x80000303,0x1f00,0x3b1,0x80000313,0x1f01,0x3b1,0x80000314,0x1f02,0x1f00,
0x80000300,0x1f03,0x1f01,0x80000300,0x1f04,0x1f00,0x80000301,0x1f05,0x1f01,0x80000301,0x1f06,
0x1f00,0x80000342,0x1f07,0x1f01,0x80000342,0x1f08,0x391,0x80000313,0x1f09,0x391,0x80000314,0x1f0a,
0x1f08,0x80000300,0x1f0b,0x1f09,0x80000300,0x1f0c,0x1f08,0x80000301,0x1f0d,0x1f09,0x80000301,
0x1f0e,0x1f08,0x80000342,0x1f0f,0x1f09,0x80000342,0x1f10,0x3b5,0x80000313,0x1f11,0x3b5,0x80000314,
0x1f12,0x1f10,0x80000300,0x1f13,0x1f11,0x80000300,0x1f14,0x1f10,0x80000301,0x1f15,0x1f11,
0x80000301,0x1f18,0x395,0x80000313,0x1f19,0x395,0x80000314,0x1f1a,0x1f18,0x80000300,0x1f1b,0x1f19,
0x80000300,0x1f1c,0x1f18,0x80000301,0x1f1d,0x1f19,0x80000301,0x1f20,0x3b7,0x80000313,0x1f21,0x3b7,
0x80000314,0x1f22,0x1f20,0x80000300,0x1f23,0x1f21,0x80000300,0x1f24,0x1f20,0x80000301,0x1f25,
0x1f21,0x80000301,0x1f26,0x1f20,0x80000342,0x1f27,0x1f21,0x80000342,0x1f28,0x397,0x80000313,0x1f29,
0x397,0x80000314,0x1f2a,0x1f28,0x80000300,0x1f2b,0x1f29,0x80000300,0x1f2c,0x1f28,0x80000301,0x1f2d,
0x1f29,0x80000301,0x1f2e,0x1f28,0x80000342,0x1f2f,0x1f29,0x80000342,0x1f30,0x3b9,0x80000313,0x1f31,
0x3b9,0x80000314,0x1f32,0x1f30,0x80000300,0x1f33,0x1f31,0x80000300,0x1f34,0x1f30,0x80000301,0x1f35,
0x1f31,0x80000301,0x1f36,0x1f30,0x80000342,0x1f37,0x1f31,0x80000342,0x1f38,0x399,0x80000313,0x1f39,
0x399,0x80000314,0x1f3a,0x1f38,0x80000300,0x1f3b,0x1f39,0x80000300,0x1f3c,0x1f38,0x80000301,0x1f3d,
0x1f39,0x80000301,0x1f3e,0x1f38,0x80000342,0x1f3f,0x1f39,0x80000342,0x1f40,0x3bf,0x80000313,0x1f41,
0x3bf,0x80000314,0x1f42,0x1f40,0x80000300,0x1f43,0x1f41,0x80000300,0x1f44,0x1f40,0x80000301,0x1f45,
0x1f41,0x80000301,0x1f48,0x39f,0x80000313,0x1f49,0x39f,0x80000314,0x1f4a,0x1f48,0x80000300,0x1f4b,
0x1f49,0x80000300,0x1f4c,0x1f48,0x80000301,0x1f4d,0x1f49,0x80000301,0x1f50,0x3c5,0x80000313,0x1f51,
0x3c5,0x80000314,0x1f52,0x1f50,0x80000300,0x1f53,0x1f51,0x80000300,0x1f54,0x1f50,0x80000301,0x1f55,
0x1f51,0x80000301,0x1f56,0x1f50,0x80000342,0x1f57,0x1f51,0x80000342,0x1f59,0x3a5,0x80000314,0x1f5b,
0x1f59,0x80000300,0x1f5d,0x1f59,0x80000301,0x1f5f,0x1f59,0x80000342,0x1f60,0x3c9,0x80000313,0x1f61,
0x3c9,0x80000314,0x1f62,0x1f60,0x80000300,0x1f63,0x1f61,0x80000300,0x1f64,0x1f60,0x80000301,0x1f65,
0x1f61,0x80000301,0x1f66,0x1f60,0x80000342,0x1f67,0x1f61,0x80000342,0x1f68,0x3a9,0x80000313,0x1f69,
0x3a9,0x80000314,0x1f6a,0x1f68,0x80000300,0x1f6b,0x1f69,0x80000300,0x1f6c,0x1f68,0x80000301,0x1f6d,
0x1f69,0x80000301,0x1f6e,0x1f68,0x80000342,0x1f6f,0x1f69,0x80000342,0x1f70,0x3b1,0x80000300,0x1f71,
0x3ac,0x0,0x1f72,0x3b5,0x80000300,0x1f73,0x3ad,0x0,0x1f74,0x3b7,0x80000300,0x1f75,0x3ae,0x0,0x1f76,
0x3b9,0x80000300,0x1f77,0x3af,0x0,0x1f78,0x3bf,0x80000300,0x1f79,0x3cc,0x0,0x1f7a,0x3c5,0x80000300,
0x1f7b,0x3cd,0x0,0x1f7c,0x3c9,0x80000300,0x1f7d,0x3ce,0x0,0x1f80,0x1f00,0x80000345,0x1f81,0x1f01,
0x80000345,0x1f82,0x1f02,0x80000345,0x1f83,0x1f03,0x80000345,0x1f84,0x1f04,0x80000345,0x1f85,
0x1f05,0x80000345,0x1f86,0x1f06,0x80000345,0x1f87,0x1f07,0x80000345,0x1f88,0x1f08,0x80000345,
0x1f89,0x1f09,0x80000345,0x1f8a,0x1f0a,0x80000345,0x1f8b,0x1f0b,0x80000345,0x1f8c,0x1f0c,
0x80000345,0x1f8d,0x1f0d,0x80000345,0x1f8e,0x1f0e,0x80000345,0x1f8f,0x1f0f,0x80000345,0x1f90,
0x1f20,0x80000345,0x1f91,0x1f21,0x80000345,0x1f92,0x1f22,0x80000345,0x1f93,0x1f23,0x80000345,
0x1f94,0x1f24,0x80000345,0x1f95,0x1f25,0x80000345,0x1f96,0x1f26,0x80000345,0x1f97,0x1f27,
0x80000345,0x1f98,0x1f28,0x80000345,0x1f99,0x1f29,0x80000345,0x1f9a,0x1f2a,0x80000345,0x1f9b,
0x1f2b,0x80000345,0x1f9c,0x1f2c,0x80000345,0x1f9d,0x1f2d,0x80000345,0x1f9e,0x1f2e,0x80000345,
0x1f9f,0x1f2f,0x80000345,0x1fa0,0x1f60,0x80000345,0x1fa1,0x1f61,0x80000345,0x1fa2,0x1f62,
0x80000345,0x1fa3,0x1f63,0x80000345,0x1fa4,0x1f64,0x80000345,0x1fa5,0x1f65,0x80000345,0x1fa6,
0x1f66,0x80000345,0x1fa7,0x1f67,0x80000345,0x1fa8,0x1f68,0x80000345,0x1fa9,0x1f69,0x80000345,
0x1faa,0x1f6a,0x80000345,0x1fab,0x1f6b,0x80000345,0x1fac,0x1f6c,0x80000345,0x1fad,0x1f6d,
0x80000345,0x1fae,0x1f6e,0x80000345,0x1faf,0x1f6f,0x80000345,0x1fb0,0x3b1,0x80000306,0x1fb1,0x3b1,
0x80000304,0x1fb2,0x1f70,0x80000345,0x1fb3,0x3b1,0x80000345,0x1fb4,0x3ac,0x80000345,0x1fb6,0x3b1,
0x80000342,0x1fb7,0x1fb6,0x80000345,0x1fb8,0x391,0x80000306,0x1fb9,0x391,0x80000304,0x1fba,0x391,
0x80000300,0x1fbb,0x386,0x0,0x1fbc,0x391,0x80000345,0x1fbe,0x3b9,0x0,0x1fc1,0xa8,0x80000342,0x1fc2,
0x1f74,0x80000345,0x1fc3,0x3b7,0x80000345,0x1fc4,0x3ae,0x80000345,0x1fc6,0x3b7,0x80000342,0x1fc7,
0x1fc6,0x80000345,0x1fc8,0x395,0x80000300,0x1fc9,0x388,0x0,0x1fca,0x397,0x80000300,0x1fcb,0x389,
0x0,0x1fcc,0x397,0x80000345,0x1fcd,0x1fbf,0x80000300,0x1fce,0x1fbf,0x80000301,0x1fcf,0x1fbf,
0x80000342,0x1fd0,0x3b9,0x80000306,0x1fd1,0x3b9,0x80000304,0x1fd2,0x3ca,0x80000300,0x1fd3,0x390,
0x0,0x1fd6,0x3b9,0x80000342,0x1fd7,0x3ca,0x80000342,0x1fd8,0x399,0x80000306,0x1fd9,0x399,
0x80000304,0x1fda,0x399,0x80000300,0x1fdb,0x38a,0x0,0x1fdd,0x1ffe,0x80000300,0x1fde,0x1ffe,
0x80000301,0x1fdf,0x1ffe,0x80000342,0x1fe0,0x3c5,0x80000306,0x1fe1,0x3c5,0x80000304,0x1fe2,0x3cb,
0x80000300,0x1fe3,0x3b0,0x0,0x1fe4,0x3c1,0x80000313,0x1fe5,0x3c1,0x80000314,0x1fe6,0x3c5,
0x80000342,0x1fe7,0x3cb,0x80000342,0x1fe8,0x3a5,0x80000306,0x1fe9,0x3a5,0x80000304,0x1fea,0x3a5,
0x80000300,0x1feb,0x38e,0x0,0x1fec,0x3a1,0x80000314,0x1fed,0xa8,0x80000300,0x1fee,0x385,0x0,0x1fef,
0x60,0x0,0x1ff2,0x1f7c,0x80000345,0x1ff3,0x3c9,0x80000345,0x1ff4,0x3ce,0x80000345,0x1ff6,0x3c9,
0x80000342,0x1ff7,0x1ff6,0x80000345,0x1ff8,0x39f,0x80000300,0x1ff9,0x38c,0x0,0x1ffa,0x3a9,
0x80000300,0x1ffb,0x38f,0x0,0x1ffc,0x3a9,0x80000345,0x1ffd,0xb4,0x0,0x2000,0x2002,0x0,0x2001,
0x2003,0x0,0x2126,0x3a9,0x0,0x212a,0x4b,0x0,0x212b,0xc5,0x0,0x219a,0x2190,0x80000338,0x219b,0x2192,
0x80000338,0x21ae,0x2194,0x80000338,0x21cd,0x21d0,0x80000338,0x21ce,0x21d4,0x80000338,0x21cf,
0x21d2,0x80000338,0x2204,0x2203,0x80000338,0x2209,0x2208,0x80000338,0x220c,0x220b,0x80000338,
0x2224,0x2223,0x80000338,0x2226,0x2225,0x80000338,0x2241,0x223c,0x80000338,0x2244,0x2243,
0x80000338,0x2247,0x2245,0x80000338,0x2249,0x2248,0x80000338,0x2260,0x3d,0x80000338,0x2262,0x2261,
0x80000338,0x226d,0x224d,0x80000338,0x226e,0x3c,0x80000338,0x226f,0x3e,0x80000338,0x2270,0x2264,
0x80000338,0x2271,0x2265,0x80000338,0x2274,0x2272,0x80000338,0x2275,0x2273,0x80000338,0x2278,
0x2276,0x80000338,0x2279,0x2277,0x80000338,0x2280,0x227a,0x80000338,0x2281,0x227b,0x80000338,
0x2284,0x2282,0x80000338,0x2285,0x2283,0x80000338,0x2288,0x2286,0x80000338,0x2289,0x2287,
0x80000338,0x22ac,0x22a2,0x80000338,0x22ad,0x22a8,0x80000338,0x22ae,0x22a9,0x80000338,0x22af,
0x22ab,0x80000338,0x22e0,0x227c,0x80000338,0x22e1,0x227d,0x80000338,0x22e2,0x2291,0x80000338,
0x22e3,0x2292,0x80000338,0x22ea,0x22b2,0x80000338,0x22eb,0x22b3,0x80000338,0x22ec,0x22b4,
0x80000338,0x22ed,0x22b5,0x80000338,0x2329,0x3008,0x0,0x232a,0x3009,0x0,0x2adc,0x2add,0x338,0x304c,
0x304b,0x80003099,0x304e,0x304d,0x80003099,0x3050,0x304f,0x80003099,0x3052,0x3051,0x80003099,
0x3054,0x3053,0x80003099,0x3056,0x3055,0x80003099,0x3058,0x3057,0x80003099,0x305a,0x3059,
0x80003099,0x305c,0x305b,0x80003099,0x305e,0x305d,0x80003099,0x3060,0x305f,0x80003099,0x3062,
0x3061,0x80003099,0x3065,0x3064,0x80003099,0x3067,0x3066,0x80003099,0x3069,0x3068,0x80003099,
0x3070,0x306f,0x80003099,0x3071,0x306f,0x8000309a,0x3073,0x3072,0x80003099,0x3074,0x3072,
0x8000309a,0x3076,0x3075,0x80003099,0x3077,0x3075,0x8000309a,0x3079,0x3078,0x80003099,0x307a,
0x3078,0x8000309a,0x307c,0x307b,0x80003099,0x307d,0x307b,0x8000309a,0x3094,0x3046,0x80003099,
0x309e,0x309d,0x80003099,0x30ac,0x30ab,0x80003099,0x30ae,0x30ad,0x80003099,0x30b0,0x30af,
0x80003099,0x30b2,0x30b1,0x80003099,0x30b4,0x30b3,0x80003099,0x30b6,0x30b5,0x80003099,0x30b8,
0x30b7,0x80003099,0x30ba,0x30b9,0x80003099,0x30bc,0x30bb,0x80003099,0x30be,0x30bd,0x80003099,
0x30c0,0x30bf,0x80003099,0x30c2,0x30c1,0x80003099,0x30c5,0x30c4,0x80003099,0x30c7,0x30c6,
0x80003099,0x30c9,0x30c8,0x80003099,0x30d0,0x30cf,0x80003099,0x30d1,0x30cf,0x8000309a,0x30d3,
0x30d2,0x80003099,0x30d4,0x30d2,0x8000309a,0x30d6,0x30d5,0x80003099,0x30d7,0x30d5,0x8000309a,
0x30d9,0x30d8,0x80003099,0x30da,0x30d8,0x8000309a,0x30dc,0x30db,0x80003099,0x30dd,0x30db,
0x8000309a,0x30f4,0x30a6,0x80003099,0x30f7,0x30ef,0x80003099,0x30f8,0x30f0,0x80003099,0x30f9,
0x30f1,0x80003099,0x30fa,0x30f2,0x80003099,0x30fe,0x30fd,0x80003099,0xf900,0x8c48,0x0,0xf901,
0x66f4,0x0,0xf902,0x8eca,0x0,0xf903,0x8cc8,0x0,0xf904,0x6ed1,0x0,0xf905,0x4e32,0x0,0xf906,0x53e5,
0x0,0xf907,0x9f9c,0x0,0xf908,0x9f9c,0x0,0xf909,0x5951,0x0,0xf90a,0x91d1,0x0,0xf90b,0x5587,0x0,
0xf90c,0x5948,0x0,0xf90d,0x61f6,0x0,0xf90e,0x7669,0x0,0xf90f,0x7f85,0x0,0xf910,0x863f,0x0,0xf911,
0x87ba,0x0,0xf912,0x88f8,0x0,0xf913,0x908f,0x0,0xf914,0x6a02,0x0,0xf915,0x6d1b,0x0,0xf916,0x70d9,
0x0,0xf917,0x73de,0x0,0xf918,0x843d,0x0,0xf919,0x916a,0x0,0xf91a,0x99f1,0x0,0xf91b,0x4e82,0x0,
0xf91c,0x5375,0x0,0xf91d,0x6b04,0x0,0xf91e,0x721b,0x0,0xf91f,0x862d,0x0,0xf920,0x9e1e,0x0,0xf921,
0x5d50,0x0,0xf922,0x6feb,0x0,0xf923,0x85cd,0x0,0xf924,0x8964,0x0,0xf925,0x62c9,0x0,0xf926,0x81d8,
0x0,0xf927,0x881f,0x0,0xf928,0x5eca,0x0,0xf929,0x6717,0x0,0xf92a,0x6d6a,0x0,0xf92b,0x72fc,0x0,
0xf92c,0x90ce,0x0,0xf92d,0x4f86,0x0,0xf92e,0x51b7,0x0,0xf92f,0x52de,0x0,0xf930,0x64c4,0x0,0xf931,
0x6ad3,0x0,0xf932,0x7210,0x0,0xf933,0x76e7,0x0,0xf934,0x8001,0x0,0xf935,0x8606,0x0,0xf936,0x865c,
0x0,0xf937,0x8def,0x0,0xf938,0x9732,0x0,0xf939,0x9b6f,0x0,0xf93a,0x9dfa,0x0,0xf93b,0x788c,0x0,
0xf93c,0x797f,0x0,0xf93d,0x7da0,0x0,0xf93e,0x83c9,0x0,0xf93f,0x9304,0x0,0xf940,0x9e7f,0x0,0xf941,
0x8ad6,0x0,0xf942,0x58df,0x0,0xf943,0x5f04,0x0,0xf944,0x7c60,0x0,0xf945,0x807e,0x0,0xf946,0x7262,
0x0,0xf947,0x78ca,0x0,0xf948,0x8cc2,0x0,0xf949,0x96f7,0x0,0xf94a,0x58d8,0x0,0xf94b,0x5c62,0x0,
0xf94c,0x6a13,0x0,0xf94d,0x6dda,0x0,0xf94e,0x6f0f,0x0,0xf94f,0x7d2f,0x0,0xf950,0x7e37,0x0,0xf951,
0x964b,0x0,0xf952,0x52d2,0x0,0xf953,0x808b,0x0,0xf954,0x51dc,0x0,0xf955,0x51cc,0x0,0xf956,0x7a1c,
0x0,0xf957,0x7dbe,0x0,0xf958,0x83f1,0x0,0xf959,0x9675,0x0,0xf95a,0x8b80,0x0,0xf95b,0x62cf,0x0,
0xf95c,0x6a02,0x0,0xf95d,0x8afe,0x0,0xf95e,0x4e39,0x0,0xf95f,0x5be7,0x0,0xf960,0x6012,0x0,0xf961,
0x7387,0x0,0xf962,0x7570,0x0,0xf963,0x5317,0x0,0xf964,0x78fb,0x0,0xf965,0x4fbf,0x0,0xf966,0x5fa9,
0x0,0xf967,0x4e0d,0x0,0xf968,0x6ccc,0x0,0xf969,0x6578,0x0,0xf96a,0x7d22,0x0,0xf96b,0x53c3,0x0,
0xf96c,0x585e,0x0,0xf96d,0x7701,0x0,0xf96e,0x8449,0x0,0xf96f,0x8aaa,0x0,0xf970,0x6bba,0x0,0xf971,
0x8fb0,0x0,0xf972,0x6c88,0x0,0xf973,0x62fe,0x0,0xf974,0x82e5,0x0,0xf975,0x63a0,0x0,0xf976,0x7565,
0x0,0xf977,0x4eae,0x0,0xf978,0x5169,0x0,0xf979,0x51c9,0x0,0xf97a,0x6881,0x0,0xf97b,0x7ce7,0x0,
0xf97c,0x826f,0x0,0xf97d,0x8ad2,0x0,0xf97e,0x91cf,0x0,0xf97f,0x52f5,0x0,0xf980,0x5442,0x0,0xf981,
0x5973,0x0,0xf982,0x5eec,0x0,0xf983,0x65c5,0x0,0xf984,0x6ffe,0x0,0xf985,0x792a,0x0,0xf986,0x95ad,
0x0,0xf987,0x9a6a,0x0,0xf988,0x9e97,0x0,0xf989,0x9ece,0x0,0xf98a,0x529b,0x0,0xf98b,0x66c6,0x0,
0xf98c,0x6b77,0x0,0xf98d,0x8f62,0x0,0xf98e,0x5e74,0x0,0xf98f,0x6190,0x0,0xf990,0x6200,0x0,0xf991,
0x649a,0x0,0xf992,0x6f23,0x0,0xf993,0x7149,0x0,0xf994,0x7489,0x0,0xf995,0x79ca,0x0,0xf996,0x7df4,
0x0,0xf997,0x806f,0x0,0xf998,0x8f26,0x0,0xf999,0x84ee,0x0,0xf99a,0x9023,0x0,0xf99b,0x934a,0x0,
0xf99c,0x5217,0x0,0xf99d,0x52a3,0x0,0xf99e,0x54bd,0x0,0xf99f,0x70c8,0x0,0xf9a0,0x88c2,0x0,0xf9a1,
0x8aaa,0x0,0xf9a2,0x5ec9,0x0,0xf9a3,0x5ff5,0x0,0xf9a4,0x637b,0x0,0xf9a5,0x6bae,0x0,0xf9a6,0x7c3e,
0x0,0xf9a7,0x7375,0x0,0xf9a8,0x4ee4,0x0,0xf9a9,0x56f9,0x0,0xf9aa,0x5be7,0x0,0xf9ab,0x5dba,0x0,
0xf9ac,0x601c,0x0,0xf9ad,0x73b2,0x0,0xf9ae,0x7469,0x0,0xf9af,0x7f9a,0x0,0xf9b0,0x8046,0x0,0xf9b1,
0x9234,0x0,0xf9b2,0x96f6,0x0,0xf9b3,0x9748,0x0,0xf9b4,0x9818,0x0,0xf9b5,0x4f8b,0x0,0xf9b6,0x79ae,
0x0,0xf9b7,0x91b4,0x0,0xf9b8,0x96b8,0x0,0xf9b9,0x60e1,0x0,0xf9ba,0x4e86,0x0,0xf9bb,0x50da,0x0,
0xf9bc,0x5bee,0x0,0xf9bd,0x5c3f,0x0,0xf9be,0x6599,0x0,0xf9bf,0x6a02,0x0,0xf9c0,0x71ce,0x0,0xf9c1,
0x7642,0x0,0xf9c2,0x84fc,0x0,0xf9c3,0x907c,0x0,0xf9c4,0x9f8d,0x0,0xf9c5,0x6688,0x0,0xf9c6,0x962e,
0x0,0xf9c7,0x5289,0x0,0xf9c8,0x677b,0x0,0xf9c9,0x67f3,0x0,0xf9ca,0x6d41,0x0,0xf9cb,0x6e9c,0x0,
0xf9cc,0x7409,0x0,0xf9cd,0x7559,0x0,0xf9ce,0x786b,0x0,0xf9cf,0x7d10,0x0,0xf9d0,0x985e,0x0,0xf9d1,
0x516d,0x0,0xf9d2,0x622e,0x0,0xf9d3,0x9678,0x0,0xf9d4,0x502b,0x0,0xf9d5,0x5d19,0x0,0xf9d6,0x6dea,
0x0,0xf9d7,0x8f2a,0x0,0xf9d8,0x5f8b,0x0,0xf9d9,0x6144,0x0,0xf9da,0x6817,0x0,0xf9db,0x7387,0x0,
0xf9dc,0x9686,0x0,0xf9dd,0x5229,0x0,0xf9de,0x540f,0x0,0xf9df,0x5c65,0x0,0xf9e0,0x6613,0x0,0xf9e1,
0x674e,0x0,0xf9e2,0x68a8,0x0,0xf9e3,0x6ce5,0x0,0xf9e4,0x7406,0x0,0xf9e5,0x75e2,0x0,0xf9e6,0x7f79,
0x0,0xf9e7,0x88cf,0x0,0xf9e8,0x88e1,0x0,0xf9e9,0x91cc,0x0,0xf9ea,0x96e2,0x0,0xf9eb,0x533f,0x0,
0xf9ec,0x6eba,0x0,0xf9ed,0x541d,0x0,0xf9ee,0x71d0,0x0,0xf9ef,0x7498,0x0,0xf9f0,0x85fa,0x0,0xf9f1,
0x96a3,0x0,0xf9f2,0x9c57,0x0,0xf9f3,0x9e9f,0x0,0xf9f4,0x6797,0x0,0xf9f5,0x6dcb,0x0,0xf9f6,0x81e8,
0x0,0xf9f7,0x7acb,0x0,0xf9f8,0x7b20,0x0,0xf9f9,0x7c92,0x0,0xf9fa,0x72c0,0x0,0xf9fb,0x7099,0x0,
0xf9fc,0x8b58,0x0,0xf9fd,0x4ec0,0x0,0xf9fe,0x8336,0x0,0xf9ff,0x523a,0x0,0xfa00,0x5207,0x0,0xfa01,
0x5ea6,0x0,0xfa02,0x62d3,0x0,0xfa03,0x7cd6,0x0,0xfa04,0x5b85,0x0,0xfa05,0x6d1e,0x0,0xfa06,0x66b4,
0x0,0xfa07,0x8f3b,0x0,0xfa08,0x884c,0x0,0xfa09,0x964d,0x0,0xfa0a,0x898b,0x0,0xfa0b,0x5ed3,0x0,
0xfa0c,0x5140,0x0,0xfa0d,0x55c0,0x0,0xfa10,0x585a,0x0,0xfa12,0x6674,0x0,0xfa15,0x51de,0x0,0xfa16,
0x732a,0x0,0xfa17,0x76ca,0x0,0xfa18,0x793c,0x0,0xfa19,0x795e,0x0,0xfa1a,0x7965,0x0,0xfa1b,0x798f,
0x0,0xfa1c,0x9756,0x0,0xfa1d,0x7cbe,0x0,0xfa1e,0x7fbd,0x0,0xfa20,0x8612,0x0,0xfa22,0x8af8,0x0,
0xfa25,0x9038,0x0,0xfa26,0x90fd,0x0,0xfa2a,0x98ef,0x0,0xfa2b,0x98fc,0x0,0xfa2c,0x9928,0x0,0xfa2d,
0x9db4,0x0,0xfa2e,0x90de,0x0,0xfa2f,0x96b7,0x0,0xfa30,0x4fae,0x0,0xfa31,0x50e7,0x0,0xfa32,0x514d,
0x0,0xfa33,0x52c9,0x0,0xfa34,0x52e4,0x0,0xfa35,0x5351,0x0,0xfa36,0x559d,0x0,0xfa37,0x5606,0x0,
0xfa38,0x5668,0x0,0xfa39,0x5840,0x0,0xfa3a,0x58a8,0x0,0xfa3b,0x5c64,0x0,0xfa3c,0x5c6e,0x0,0xfa3d,
0x6094,0x0,0xfa3e,0x6168,0x0,0xfa3f,0x618e,0x0,0xfa40,0x61f2,0x0,0xfa41,0x654f,0x0,0xfa42,0x65e2,
0x0,0xfa43,0x6691,0x0,0xfa44,0x6885,0x0,0xfa45,0x6d77,0x0,0xfa46,0x6e1a,0x0,0xfa47,0x6f22,0x0,
0xfa48,0x716e,0x0,0xfa49,0x722b,0x0,0xfa4a,0x7422,0x0,0xfa4b,0x7891,0x0,0xfa4c,0x793e,0x0,0xfa4d,
0x7949,0x0,0xfa4e,0x7948,0x0,0xfa4f,0x7950,0x0,0xfa50,0x7956,0x0,0xfa51,0x795d,0x0,0xfa52,0x798d,
0x0,0xfa53,0x798e,0x0,0xfa54,0x7a40,0x0,0xfa55,0x7a81,0x0,0xfa56,0x7bc0,0x0,0xfa57,0x7df4,0x0,
0xfa58,0x7e09,0x0,0xfa59,0x7e41,0x0,0xfa5a,0x7f72,0x0,0xfa5b,0x8005,0x0,0xfa5c,0x81ed,0x0,0xfa5d,
0x8279,0x0,0xfa5e,0x8279,0x0,0xfa5f,0x8457,0x0,0xfa60,0x8910,0x0,0xfa61,0x8996,0x0,0xfa62,0x8b01,
0x0,0xfa63,0x8b39,0x0,0xfa64,0x8cd3,0x0,0xfa65,0x8d08,0x0,0xfa66,0x8fb6,0x0,0xfa67,0x9038,0x0,
0xfa68,0x96e3,0x0,0xfa69,0x97ff,0x0,0xfa6a,0x983b,0x0,0xfa6b,0x6075,0x0,0xfa6c,0x242ee,0x0,0xfa6d,
0x8218,0x0,0xfa70,0x4e26,0x0,0xfa71,0x51b5,0x0,0xfa72,0x5168,0x0,0xfa73,0x4f80,0x0,0xfa74,0x5145,
0x0,0xfa75,0x5180,0x0,0xfa76,0x52c7,0x0,0xfa77,0x52fa,0x0,0xfa78,0x559d,0x0,0xfa79,0x5555,0x0,
0xfa7a,0x5599,0x0,0xfa7b,0x55e2,0x0,0xfa7c,0x585a,0x0,0xfa7d,0x58b3,0x0,0xfa7e,0x5944,0x0,0xfa7f,
0x5954,0x0,0xfa80,0x5a62,0x0,0xfa81,0x5b28,0x0,0xfa82,0x5ed2,0x0,0xfa83,0x5ed9,0x0,0xfa84,0x5f69,
0x0,0xfa85,0x5fad,0x0,0xfa86,0x60d8,0x0,0xfa87,0x614e,0x0,0xfa88,0x6108,0x0,0xfa89,0x618e,0x0,
0xfa8a,0x6160,0x0,0xfa8b,0x61f2,0x0,0xfa8c,0x6234,0x0,0xfa8d,0x63c4,0x0,0xfa8e,0x641c,0x0,0xfa8f,
0x6452,0x0,0xfa90,0x6556,0x0,0xfa91,0x6674,0x0,0xfa92,0x6717,0x0,0xfa93,0x671b,0x0,0xfa94,0x6756,
0x0,0xfa95,0x6b79,0x0,0xfa96,0x6bba,0x0,0xfa97,0x6d41,0x0,0xfa98,0x6edb,0x0,0xfa99,0x6ecb,0x0,
0xfa9a,0x6f22,0x0,0xfa9b,0x701e,0x0,0xfa9c,0x716e,0x0,0xfa9d,0x77a7,0x0,0xfa9e,0x7235,0x0,0xfa9f,
0x72af,0x0,0xfaa0,0x732a,0x0,0xfaa1,0x7471,0x0,0xfaa2,0x7506,0x0,0xfaa3,0x753b,0x0,0xfaa4,0x761d,
0x0,0xfaa5,0x761f,0x0,0xfaa6,0x76ca,0x0,0xfaa7,0x76db,0x0,0xfaa8,0x76f4,0x0,0xfaa9,0x774a,0x0,
0xfaaa,0x7740,0x0,0xfaab,0x78cc,0x0,0xfaac,0x7ab1,0x0,0xfaad,0x7bc0,0x0,0xfaae,0x7c7b,0x0,0xfaaf,
0x7d5b,0x0,0xfab0,0x7df4,0x0,0xfab1,0x7f3e,0x0,0xfab2,0x8005,0x0,0xfab3,0x8352,0x0,0xfab4,0x83ef,
0x0,0xfab5,0x8779,0x0,0xfab6,0x8941,0x0,0xfab7,0x8986,0x0,0xfab8,0x8996,0x0,0xfab9,0x8abf,0x0,
0xfaba,0x8af8,0x0,0xfabb,0x8acb,0x0,0xfabc,0x8b01,0x0,0xfabd,0x8afe,0x0,0xfabe,0x8aed,0x0,0xfabf,
0x8b39,0x0,0xfac0,0x8b8a,0x0,0xfac1,0x8d08,0x0,0xfac2,0x8f38,0x0,0xfac3,0x9072,0x0,0xfac4,0x9199,
0x0,0xfac5,0x9276,0x0,0xfac6,0x967c,0x0,0xfac7,0x96e3,0x0,0xfac8,0x9756,0x0,0xfac9,0x97db,0x0,
0xfaca,0x97ff,0x0,0xfacb,0x980b,0x0,0xfacc,0x983b,0x0,0xfacd,0x9b12,0x0,0xface,0x9f9c,0x0,0xfacf,
0x2284a,0x0,0xfad0,0x22844,0x0,0xfad1,0x233d5,0x0,0xfad2,0x3b9d,0x0,0xfad3,0x4018,0x0,0xfad4,
0x4039,0x0,0xfad5,0x25249,0x0,0xfad6,0x25cd0,0x0,0xfad7,0x27ed3,0x0,0xfad8,0x9f43,0x0,0xfad9,
0x9f8e,0x0,0xfb1d,0x5d9,0x5b4,0xfb1f,0x5f2,0x5b7,0xfb2a,0x5e9,0x5c1,0xfb2b,0x5e9,0x5c2,0xfb2c,
0xfb49,0x5c1,0xfb2d,0xfb49,0x5c2,0xfb2e,0x5d0,0x5b7,0xfb2f,0x5d0,0x5b8,0xfb30,0x5d0,0x5bc,0xfb31,
0x5d1,0x5bc,0xfb32,0x5d2,0x5bc,0xfb33,0x5d3,0x5bc,0xfb34,0x5d4,0x5bc,0xfb35,0x5d5,0x5bc,0xfb36,
0x5d6,0x5bc,0xfb38,0x5d8,0x5bc,0xfb39,0x5d9,0x5bc,0xfb3a,0x5da,0x5bc,0xfb3b,0x5db,0x5bc,0xfb3c,
0x5dc,0x5bc,0xfb3e,0x5de,0x5bc,0xfb40,0x5e0,0x5bc,0xfb41,0x5e1,0x5bc,0xfb43,0x5e3,0x5bc,0xfb44,
0x5e4,0x5bc,0xfb46,0x5e6,0x5bc,0xfb47,0x5e7,0x5bc,0xfb48,0x5e8,0x5bc,0xfb49,0x5e9,0x5bc,0xfb4a,
0x5ea,0x5bc,0xfb4b,0x5d5,0x5b9,0xfb4c,0x5d1,0x5bf,0xfb4d,0x5db,0x5bf,0xfb4e,0x5e4,0x5bf,0x1109a,
0x11099,0x800110ba,0x1109c,0x1109b,0x800110ba,0x110ab,0x110a5,0x800110ba,0x1112e,0x11131,
0x80011127,0x1112f,0x11132,0x80011127,0x1134b,0x11347,0x8001133e,0x1134c,0x11347,0x80011357,
0x114bb,0x114b9,0x800114ba,0x114bc,0x114b9,0x800114b0,0x114be,0x114b9,0x800114bd,0x115ba,0x115b8,
0x800115af,0x115bb,0x115b9,0x800115af,0x1d15e,0x1d157,0x1d165,0x1d15f,0x1d158,0x1d165,0x1d160,
0x1d15f,0x1d16e,0x1d161,0x1d15f,0x1d16f,0x1d162,0x1d15f,0x1d170,0x1d163,0x1d15f,0x1d171,0x1d164,
0x1d15f,0x1d172,0x1d1bb,0x1d1b9,0x1d165,0x1d1bc,0x1d1ba,0x1d165,0x1d1bd,0x1d1bb,0x1d16e,0x1d1be,
0x1d1bc,0x1d16e,0x1d1bf,0x1d1bb,0x1d16f,0x1d1c0,0x1d1bc,0x1d16f,0x2f800,0x4e3d,0x0,0x2f801,0x4e38,
0x0,0x2f802,0x4e41,0x0,0x2f803,0x20122,0x0,0x2f804,0x4f60,0x0,0x2f805,0x4fae,0x0,0x2f806,0x4fbb,
0x0,0x2f807,0x5002,0x0,0x2f808,0x507a,0x0,0x2f809,0x5099,0x0,0x2f80a,0x50e7,0x0,0x2f80b,0x50cf,0x0,
0x2f80c,0x349e,0x0,0x2f80d,0x2063a,0x0,0x2f80e,0x514d,0x0,0x2f80f,0x5154,0x0,0x2f810,0x5164,0x0,
0x2f811,0x5177,0x0,0x2f812,0x2051c,0x0,0x2f813,0x34b9,0x0,0x2f814,0x5167,0x0,0x2f815,0x518d,0x0,
0x2f816,0x2054b,0x0,0x2f817,0x5197,0x0,0x2f818,0x51a4,0x0,0x2f819,0x4ecc,0x0,0x2f81a,0x51ac,0x0,
0x2f81b,0x51b5,0x0,0x2f81c,0x291df,0x0,0x2f81d,0x51f5,0x0,0x2f81e,0x5203,0x0,0x2f81f,0x34df,0x0,
0x2f820,0x523b,0x0,0x2f821,0x5246,0x0,0x2f822,0x5272,0x0,0x2f823,0x5277,0x0,0x2f824,0x3515,0x0,
0x2f825,0x52c7,0x0,0x2f826,0x52c9,0x0,0x2f827,0x52e4,0x0,0x2f828,0x52fa,0x0,0x2f829,0x5305,0x0,
0x2f82a,0x5306,0x0,0x2f82b,0x5317,0x0,0x2f82c,0x5349,0x0,0x2f82d,0x5351,0x0,0x2f82e,0x535a,0x0,
0x2f82f,0x5373,0x0,0x2f830,0x537d,0x0,0x2f831,0x537f,0x0,0x2f832,0x537f,0x0,0x2f833,0x537f,0x0,
0x2f834,0x20a2c,0x0,0x2f835,0x7070,0x0,0x2f836,0x53ca,0x0,0x2f837,0x53df,0x0,0x2f838,0x20b63,0x0,
0x2f839,0x53eb,0x0,0x2f83a,0x53f1,0x0,0x2f83b,0x5406,0x0,0x2f83c,0x549e,0x0,0x2f83d,0x5438,0x0,
0x2f83e,0x5448,0x0,0x2f83f,0x5468,0x0,0x2f840,0x54a2,0x0,0x2f841,0x54f6,0x0,0x2f842,0x5510,0x0,
0x2f843,0x5553,0x0,0x2f844,0x5563,0x0,0x2f845,0x5584,0x0,0x2f846,0x5584,0x0,0x2f847,0x5599,0x0,
0x2f848,0x55ab,0x0,0x2f849,0x55b3,0x0,0x2f84a,0x55c2,0x0,0x2f84b,0x5716,0x0,0x2f84c,0x5606,0x0,
0x2f84d,0x5717,0x0,0x2f84e,0x5651,0x0,0x2f84f,0x5674,0x0,0x2f850,0x5207,0x0,0x2f851,0x58ee,0x0,
0x2f852,0x57ce,0x0,0x2f853,0x57f4,0x0,0x2f854,0x580d,0x0,0x2f855,0x578b,0x0,0x2f856,0x5832,0x0,
0x2f857,0x5831,0x0,0x2f858,0x58ac,0x0,0x2f859,0x214e4,0x0,0x2f85a,0x58f2,0x0,0x2f85b,0x58f7,0x0,
0x2f85c,0x5906,0x0,0x2f85d,0x591a,0x0,0x2f85e,0x5922,0x0,0x2f85f,0x5962,0x0,0x2f860,0x216a8,0x0,
0x2f861,0x216ea,0x0,0x2f862,0x59ec,0x0,0x2f863,0x5a1b,0x0,0x2f864,0x5a27,0x0,0x2f865,0x59d8,0x0,
0x2f866,0x5a66,0x0,0x2f867,0x36ee,0x0,0x2f868,0x36fc,0x0,0x2f869,0x5b08,0x0,0x2f86a,0x5b3e,0x0,
0x2f86b,0x5b3e,0x0,0x2f86c,0x219c8,0x0,0x2f86d,0x5bc3,0x0,0x2f86e,0x5bd8,0x0,0x2f86f,0x5be7,0x0,
0x2f870,0x5bf3,0x0,0x2f871,0x21b18,0x0,0x2f872,0x5bff,0x0,0x2f873,0x5c06,0x0,0x2f874,0x5f53,0x0,
0x2f875,0x5c22,0x0,0x2f876,0x3781,0x0,0x2f877,0x5c60,0x0,0x2f878,0x5c6e,0x0,0x2f879,0x5cc0,0x0,
0x2f87a,0x5c8d,0x0,0x2f87b,0x21de4,0x0,0x2f87c,0x5d43,0x0,0x2f87d,0x21de6,0x0,0x2f87e,0x5d6e,0x0,
0x2f87f,0x5d6b,0x0,0x2f880,0x5d7c,0x0,0x2f881,0x5de1,0x0,0x2f882,0x5de2,0x0,0x2f883,0x382f,0x0,
0x2f884,0x5dfd,0x0,0x2f885,0x5e28,0x0,0x2f886,0x5e3d,0x0,0x2f887,0x5e69,0x0,0x2f888,0x3862,0x0,
0x2f889,0x22183,0x0,0x2f88a,0x387c,0x0,0x2f88b,0x5eb0,0x0,0x2f88c,0x5eb3,0x0,0x2f88d,0x5eb6,0x0,
0x2f88e,0x5eca,0x0,0x2f88f,0x2a392,0x0,0x2f890,0x5efe,0x0,0x2f891,0x22331,0x0,0x2f892,0x22331,0x0,
0x2f893,0x8201,0x0,0x2f894,0x5f22,0x0,0x2f895,0x5f22,0x0,0x2f896,0x38c7,0x0,0x2f897,0x232b8,0x0,
0x2f898,0x261da,0x0,0x2f899,0x5f62,0x0,0x2f89a,0x5f6b,0x0,0x2f89b,0x38e3,0x0,0x2f89c,0x5f9a,0x0,
0x2f89d,0x5fcd,0x0,0x2f89e,0x5fd7,0x0,0x2f89f,0x5ff9,0x0,0x2f8a0,0x6081,0x0,0x2f8a1,0x393a,0x0,
0x2f8a2,0x391c,0x0,0x2f8a3,0x6094,0x0,0x2f8a4,0x226d4,0x0,0x2f8a5,0x60c7,0x0,0x2f8a6,0x6148,0x0,
0x2f8a7,0x614c,0x0,0x2f8a8,0x614e,0x0,0x2f8a9,0x614c,0x0,0x2f8aa,0x617a,0x0,0x2f8ab,0x618e,0x0,
0x2f8ac,0x61b2,0x0,0x2f8ad,0x61a4,0x0,0x2f8ae,0x61af,0x0,0x2f8af,0x61de,0x0,0x2f8b0,0x61f2,0x0,
0x2f8b1,0x61f6,0x0,0x2f8b2,0x6210,0x0,0x2f8b3,0x621b,0x0,0x2f8b4,0x625d,0x0,0x2f8b5,0x62b1,0x0,
0x2f8b6,0x62d4,0x0,0x2f8b7,0x6350,0x0,0x2f8b8,0x22b0c,0x0,0x2f8b9,0x633d,0x0,0x2f8ba,0x62fc,0x0,
0x2f8bb,0x6368,0x0,0x2f8bc,0x6383,0x0,0x2f8bd,0x63e4,0x0,0x2f8be,0x22bf1,0x0,0x2f8bf,0x6422,0x0,
0x2f8c0,0x63c5,0x0,0x2f8c1,0x63a9,0x0,0x2f8c2,0x3a2e,0x0,0x2f8c3,0x6469,0x0,0x2f8c4,0x647e,0x0,
0x2f8c5,0x649d,0x0,0x2f8c6,0x6477,0x0,0x2f8c7,0x3a6c,0x0,0x2f8c8,0x654f,0x0,0x2f8c9,0x656c,0x0,
0x2f8ca,0x2300a,0x0,0x2f8cb,0x65e3,0x0,0x2f8cc,0x66f8,0x0,0x2f8cd,0x6649,0x0,0x2f8ce,0x3b19,0x0,
0x2f8cf,0x6691,0x0,0x2f8d0,0x3b08,0x0,0x2f8d1,0x3ae4,0x0,0x2f8d2,0x5192,0x0,0x2f8d3,0x5195,0x0,
0x2f8d4,0x6700,0x0,0x2f8d5,0x669c,0x0,0x2f8d6,0x80ad,0x0,0x2f8d7,0x43d9,0x0,0x2f8d8,0x6717,0x0,
0x2f8d9,0x671b,0x0,0x2f8da,0x6721,0x0,0x2f8db,0x675e,0x0,0x2f8dc,0x6753,0x0,0x2f8dd,0x233c3,0x0,
0x2f8de,0x3b49,0x0,0x2f8df,0x67fa,0x0,0x2f8e0,0x6785,0x0,0x2f8e1,0x6852,0x0,0x2f8e2,0x6885,0x0,
0x2f8e3,0x2346d,0x0,0x2f8e4,0x688e,0x0,0x2f8e5,0x681f,0x0,0x2f8e6,0x6914,0x0,0x2f8e7,0x3b9d,0x0,
0x2f8e8,0x6942,0x0,0x2f8e9,0x69a3,0x0,0x2f8ea,0x69ea,0x0,0x2f8eb,0x6aa8,0x0,0x2f8ec,0x236a3,0x0,
0x2f8ed,0x6adb,0x0,0x2f8ee,0x3c18,0x0,0x2f8ef,0x6b21,0x0,0x2f8f0,0x238a7,0x0,0x2f8f1,0x6b54,0x0,
0x2f8f2,0x3c4e,0x0,0x2f8f3,0x6b72,0x0,0x2f8f4,0x6b9f,0x0,0x2f8f5,0x6bba,0x0,0x2f8f6,0x6bbb,0x0,
0x2f8f7,0x23a8d,0x0,0x2f8f8,0x21d0b,0x0,0x2f8f9,0x23afa,0x0,0x2f8fa,0x6c4e,0x0,0x2f8fb,0x23cbc,0x0,
0x2f8fc,0x6cbf,0x0,0x2f8fd,0x6ccd,0x0,0x2f8fe,0x6c67,0x0,0x2f8ff,0x6d16,0x0,0x2f900,0x6d3e,0x0,
0x2f901,0x6d77,0x0,0x2f902,0x6d41,0x0,0x2f903,0x6d69,0x0,0x2f904,0x6d78,0x0,0x2f905,0x6d85,0x0,
0x2f906,0x23d1e,0x0,0x2f907,0x6d34,0x0,0x2f908,0x6e2f,0x0,0x2f909,0x6e6e,0x0,0x2f90a,0x3d33,0x0,
0x2f90b,0x6ecb,0x0,0x2f90c,0x6ec7,0x0,0x2f90d,0x23ed1,0x0,0x2f90e,0x6df9,0x0,0x2f90f,0x6f6e,0x0,
0x2f910,0x23f5e,0x0,0x2f911,0x23f8e,0x0,0x2f912,0x6fc6,0x0,0x2f913,0x7039,0x0,0x2f914,0x701e,0x0,
0x2f915,0x701b,0x0,0x2f916,0x3d96,0x0,0x2f917,0x704a,0x0,0x2f918,0x707d,0x0,0x2f919,0x7077,0x0,
0x2f91a,0x70ad,0x0,0x2f91b,0x20525,0x0,0x2f91c,0x7145,0x0,0x2f91d,0x24263,0x0,0x2f91e,0x719c,0x0,
0x2f91f,0x243ab,0x0,0x2f920,0x7228,0x0,0x2f921,0x7235,0x0,0x2f922,0x7250,0x0,0x2f923,0x24608,0x0,
0x2f924,0x7280,0x0,0x2f925,0x7295,0x0,0x2f926,0x24735,0x0,0x2f927,0x24814,0x0,0x2f928,0x737a,0x0,
0x2f929,0x738b,0x0,0x2f92a,0x3eac,0x0,0x2f92b,0x73a5,0x0,0x2f92c,0x3eb8,0x0,0x2f92d,0x3eb8,0x0,
0x2f92e,0x7447,0x0,0x2f92f,0x745c,0x0,0x2f930,0x7471,0x0,0x2f931,0x7485,0x0,0x2f932,0x74ca,0x0,
0x2f933,0x3f1b,0x0,0x2f934,0x7524,0x0,0x2f935,0x24c36,0x0,0x2f936,0x753e,0x0,0x2f937,0x24c92,0x0,
0x2f938,0x7570,0x0,0x2f939,0x2219f,0x0,0x2f93a,0x7610,0x0,0x2f93b,0x24fa1,0x0,0x2f93c,0x24fb8,0x0,
0x2f93d,0x25044,0x0,0x2f93e,0x3ffc,0x0,0x2f93f,0x4008,0x0,0x2f940,0x76f4,0x0,0x2f941,0x250f3,0x0,
0x2f942,0x250f2,0x0,0x2f943,0x25119,0x0,0x2f944,0x25133,0x0,0x2f945,0x771e,0x0,0x2f946,0x771f,0x0,
0x2f947,0x771f,0x0,0x2f948,0x774a,0x0,0x2f949,0x4039,0x0,0x2f94a,0x778b,0x0,0x2f94b,0x4046,0x0,
0x2f94c,0x4096,0x0,0x2f94d,0x2541d,0x0,0x2f94e,0x784e,0x0,0x2f94f,0x788c,0x0,0x2f950,0x78cc,0x0,
0x2f951,0x40e3,0x0,0x2f952,0x25626,0x0,0x2f953,0x7956,0x0,0x2f954,0x2569a,0x0,0x2f955,0x256c5,0x0,
0x2f956,0x798f,0x0,0x2f957,0x79eb,0x0,0x2f958,0x412f,0x0,0x2f959,0x7a40,0x0,0x2f95a,0x7a4a,0x0,
0x2f95b,0x7a4f,0x0,0x2f95c,0x2597c,0x0,0x2f95d,0x25aa7,0x0,0x2f95e,0x25aa7,0x0,0x2f95f,0x7aee,0x0,
0x2f960,0x4202,0x0,0x2f961,0x25bab,0x0,0x2f962,0x7bc6,0x0,0x2f963,0x7bc9,0x0,0x2f964,0x4227,0x0,
0x2f965,0x25c80,0x0,0x2f966,0x7cd2,0x0,0x2f967,0x42a0,0x0,0x2f968,0x7ce8,0x0,0x2f969,0x7ce3,0x0,
0x2f96a,0x7d00,0x0,0x2f96b,0x25f86,0x0,0x2f96c,0x7d63,0x0,0x2f96d,0x4301,0x0,0x2f96e,0x7dc7,0x0,
0x2f96f,0x7e02,0x0,0x2f970,0x7e45,0x0,0x2f971,0x4334,0x0,0x2f972,0x26228,0x0,0x2f973,0x26247,0x0,
0x2f974,0x4359,0x0,0x2f975,0x262d9,0x0,0x2f976,0x7f7a,0x0,0x2f977,0x2633e,0x0,0x2f978,0x7f95,0x0,
0x2f979,0x7ffa,0x0,0x2f97a,0x8005,0x0,0x2f97b,0x264da,0x0,0x2f97c,0x26523,0x0,0x2f97d,0x8060,0x0,
0x2f97e,0x265a8,0x0,0x2f97f,0x8070,0x0,0x2f980,0x2335f,0x0,0x2f981,0x43d5,0x0,0x2f982,0x80b2,0x0,
0x2f983,0x8103,0x0,0x2f984,0x440b,0x0,0x2f985,0x813e,0x0,0x2f986,0x5ab5,0x0,0x2f987,0x267a7,0x0,
0x2f988,0x267b5,0x0,0x2f989,0x23393,0x0,0x2f98a,0x2339c,0x0,0x2f98b,0x8201,0x0,0x2f98c,0x8204,0x0,
0x2f98d,0x8f9e,0x0,0x2f98e,0x446b,0x0,0x2f98f,0x8291,0x0,0x2f990,0x828b,0x0,0x2f991,0x829d,0x0,
0x2f992,0x52b3,0x0,0x2f993,0x82b1,0x0,0x2f994,0x82b3,0x0,0x2f995,0x82bd,0x0,0x2f996,0x82e6,0x0,
0x2f997,0x26b3c,0x0,0x2f998,0x82e5,0x0,0x2f999,0x831d,0x0,0x2f99a,0x8363,0x0,0x2f99b,0x83ad,0x0,
0x2f99c,0x8323,0x0,0x2f99d,0x83bd,0x0,0x2f99e,0x83e7,0x0,0x2f99f,0x8457,0x0,0x2f9a0,0x8353,0x0,
0x2f9a1,0x83ca,0x0,0x2f9a2,0x83cc,0x0,0x2f9a3,0x83dc,0x0,0x2f9a4,0x26c36,0x0,0x2f9a5,0x26d6b,0x0,
0x2f9a6,0x26cd5,0x0,0x2f9a7,0x452b,0x0,0x2f9a8,0x84f1,0x0,0x2f9a9,0x84f3,0x0,0x2f9aa,0x8516,0x0,
0x2f9ab,0x273ca,0x0,0x2f9ac,0x8564,0x0,0x2f9ad,0x26f2c,0x0,0x2f9ae,0x455d,0x0,0x2f9af,0x4561,0x0,
0x2f9b0,0x26fb1,0x0,0x2f9b1,0x270d2,0x0,0x2f9b2,0x456b,0x0,0x2f9b3,0x8650,0x0,0x2f9b4,0x865c,0x0,
0x2f9b5,0x8667,0x0,0x2f9b6,0x8669,0x0,0x2f9b7,0x86a9,0x0,0x2f9b8,0x8688,0x0,0x2f9b9,0x870e,0x0,
0x2f9ba,0x86e2,0x0,0x2f9bb,0x8779,0x0,0x2f9bc,0x8728,0x0,0x2f9bd,0x876b,0x0,0x2f9be,0x8786,0x0,
0x2f9bf,0x45d7,0x0,0x2f9c0,0x87e1,0x0,0x2f9c1,0x8801,0x0,0x2f9c2,0x45f9,0x0,0x2f9c3,0x8860,0x0,
0x2f9c4,0x8863,0x0,0x2f9c5,0x27667,0x0,0x2f9c6,0x88d7,0x0,0x2f9c7,0x88de,0x0,0x2f9c8,0x4635,0x0,
0x2f9c9,0x88fa,0x0,0x2f9ca,0x34bb,0x0,0x2f9cb,0x278ae,0x0,0x2f9cc,0x27966,0x0,0x2f9cd,0x46be,0x0,
0x2f9ce,0x46c7,0x0,0x2f9cf,0x8aa0,0x0,0x2f9d0,0x8aed,0x0,0x2f9d1,0x8b8a,0x0,0x2f9d2,0x8c55,0x0,
0x2f9d3,0x27ca8,0x0,0x2f9d4,0x8cab,0x0,0x2f9d5,0x8cc1,0x0,0x2f9d6,0x8d1b,0x0,0x2f9d7,0x8d77,0x0,
0x2f9d8,0x27f2f,0x0,0x2f9d9,0x20804,0x0,0x2f9da,0x8dcb,0x0,0x2f9db,0x8dbc,0x0,0x2f9dc,0x8df0,0x0,
0x2f9dd,0x208de,0x0,0x2f9de,0x8ed4,0x0,0x2f9df,0x8f38,0x0,0x2f9e0,0x285d2,0x0,0x2f9e1,0x285ed,0x0,
0x2f9e2,0x9094,0x0,0x2f9e3,0x90f1,0x0,0x2f9e4,0x9111,0x0,0x2f9e5,0x2872e,0x0,0x2f9e6,0x911b,0x0,
0x2f9e7,0x9238,0x0,0x2f9e8,0x92d7,0x0,0x2f9e9,0x92d8,0x0,0x2f9ea,0x927c,0x0,0x2f9eb,0x93f9,0x0,
0x2f9ec,0x9415,0x0,0x2f9ed,0x28bfa,0x0,0x2f9ee,0x958b,0x0,0x2f9ef,0x4995,0x0,0x2f9f0,0x95b7,0x0,
0x2f9f1,0x28d77,0x0,0x2f9f2,0x49e6,0x0,0x2f9f3,0x96c3,0x0,0x2f9f4,0x5db2,0x0,0x2f9f5,0x9723,0x0,
0x2f9f6,0x29145,0x0,0x2f9f7,0x2921a,0x0,0x2f9f8,0x4a6e,0x0,0x2f9f9,0x4a76,0x0,0x2f9fa,0x97e0,0x0,
0x2f9fb,0x2940a,0x0,0x2f9fc,0x4ab2,0x0,0x2f9fd,0x29496,0x0,0x2f9fe,0x980b,0x0,0x2f9ff,0x980b,0x0,
0x2fa00,0x9829,0x0,0x2fa01,0x295b6,0x0,0x2fa02,0x98e2,0x0,0x2fa03,0x4b33,0x0,0x2fa04,0x9929,0x0,
0x2fa05,0x99a7,0x0,0x2fa06,0x99c2,0x0,0x2fa07,0x99fe,0x0,0x2fa08,0x4bce,0x0,0x2fa09,0x29b30,0x0,
0x2fa0a,0x9b12,0x0,0x2fa0b,0x9c40,0x0,0x2fa0c,0x9cfd,0x0,0x2fa0d,0x4cce,0x0,0x2fa0e,0x4ced,0x0,
0x2fa0f,0x9d67,0x0,0x2fa10,0x2a0ce,0x0,0x2fa11,0x4cf8,0x0,0x2fa12,0x2a105,0x0,0x2fa13,0x2a20e,0x0,
0x2fa14,0x2a291,0x0,0x2fa15,0x9ebb,0x0,0x2fa16,0x4d56,0x0,0x2fa17,0x9ef9,0x0,0x2fa18,0x9efe,0x0,
0x2fa19,0x9f05,0x0,0x2fa1a,0x9f0f,0x0,0x2fa1b,0x9f16,0x0,0x2fa1c,0x9f3b,0x0,0x2fa1d,0x2a600,0x0,
};
static const uint32_t ds__uc_ccc[496] = {
0x0,0x300e6,0x315e8,0x316dc,0x31ae8,0x31bd8,0x31cdc,0x321ca,0x323dc,0x327ca,0x329dc,0x33401,
0x339dc,0x33de6,0x345f0,0x346e6,0x347dc,0x34ae6,0x34ddc,0x34f00,0x350e6,0x353dc,0x357e6,0x358e8,
0x359dc,0x35be6,0x35ce9,0x35dea,0x35fe9,0x360ea,0x362e9,0x363e6,0x37000,0x483e6,0x48800,0x591dc,
0x592e6,0x596dc,0x597e6,0x59ade,0x59bdc,0x59ce6,0x5a2dc,0x5a8e6,0x5aadc,0x5abe6,0x5adde,0x5aee4,
0x5afe6,0x5b00a,0x5b10b,0x5b20c,0x5b30d,0x5b40e,0x5b50f,0x5b610,0x5b711,0x5b812,0x5b913,0x5bb14,
0x5bc15,0x5bd16,0x5be00,0x5bf17,0x5c000,0x5c118,0x5c219,0x5c300,0x5c4e6,0x5c5dc,0x5c600,0x5c712,
0x5c800,0x610e6,0x6181e,0x6191f,0x61a20,0x61b00,0x64b1b,0x64c1c,0x64d1d,0x64e1e,0x64f1f,0x65020,
0x65121,0x65222,0x653e6,0x655dc,0x657e6,0x65cdc,0x65de6,0x65fdc,0x66000,0x67023,0x67100,0x6d6e6,
0x6dd00,0x6dfe6,0x6e3dc,0x6e4e6,0x6e500,0x6e7e6,0x6e900,0x6eadc,0x6ebe6,0x6eddc,0x6ee00,0x71124,
0x71200,0x730e6,0x731dc,0x732e6,0x734dc,0x735e6,0x737dc,0x73ae6,0x73bdc,0x73de6,0x73edc,0x73fe6,
0x742dc,0x743e6,0x744dc,0x745e6,0x746dc,0x747e6,0x748dc,0x749e6,0x74b00,0x7ebe6,0x7f2dc,0x7f3e6,
0x7f400,0x816e6,0x81a00,0x81be6,0x82400,0x825e6,0x82800,0x829e6,0x82e00,0x859dc,0x85c00,0x8d4e6,
0x8e200,0x8e3dc,0x8e4e6,0x8e6dc,0x8e7e6,0x8e9dc,0x8eae6,0x8eddc,0x8f01b,0x8f11c,0x8f21d,0x8f3e6,
0x8f6dc,0x8f7e6,0x8f9dc,0x8fbe6,0x90000,0x93c07,0x93d00,0x94d09,0x94e00,0x951e6,0x952dc,0x953e6,
0x95500,0x9bc07,0x9bd00,0x9cd09,0x9ce00,0xa3c07,0xa3d00,0xa4d09,0xa4e00,0xabc07,0xabd00,0xacd09,
0xace00,0xb3c07,0xb3d00,0xb4d09,0xb4e00,0xbcd09,0xbce00,0xc4d09,0xc4e00,0xc5554,0xc565b,0xc5700,
0xcbc07,0xcbd00,0xccd09,0xcce00,0xd4d09,0xd4e00,0xdca09,0xdcb00,0xe3867,0xe3a09,0xe3b00,0xe486b,
0xe4c00,0xeb876,0xeba00,0xec87a,0xecc00,0xf18dc,0xf1a00,0xf35dc,0xf3600,0xf37dc,0xf3800,0xf39d8,
0xf3a00,0xf7181,0xf7282,0xf7300,0xf7484,0xf7500,0xf7a82,0xf7e00,0xf8082,0xf8100,0xf82e6,0xf8409,
0xf8500,0xf86e6,0xf8800,0xfc6dc,0xfc700,0x103707,0x103800,0x103909,0x103b00,0x108ddc,0x108e00,
0x135de6,0x136000,0x171409,0x171500,0x173409,0x173500,0x17d209,0x17d300,0x17dde6,0x17de00,0x18a9e4,
0x18aa00,0x1939de,0x193ae6,0x193bdc,0x193c00,0x1a17e6,0x1a18dc,0x1a1900,0x1a6009,0x1a6100,0x1a75e6,
0x1a7d00,0x1a7fdc,0x1a8000,0x1ab0e6,0x1ab5dc,0x1abbe6,0x1abddc,0x1abe00,0x1b3407,0x1b3500,0x1b4409,
0x1b4500,0x1b6be6,0x1b6cdc,0x1b6de6,0x1b7400,0x1baa09,0x1bac00,0x1be607,0x1be700,0x1bf209,0x1bf400,
0x1c3707,0x1c3800,0x1cd0e6,0x1cd300,0x1cd401,0x1cd5dc,0x1cdae6,0x1cdcdc,0x1ce0e6,0x1ce100,0x1ce201,
0x1ce900,0x1ceddc,0x1cee00,0x1cf4e6,0x1cf500,0x1cf8e6,0x1cfa00,0x1dc0e6,0x1dc2dc,0x1dc3e6,0x1dcadc,
0x1dcbe6,0x1dcdea,0x1dced6,0x1dcfdc,0x1dd0ca,0x1dd1e6,0x1df600,0x1dfbe6,0x1dfce9,0x1dfddc,0x1dfee6,
0x1dffdc,0x1e0000,0x20d0e6,0x20d201,0x20d4e6,0x20d801,0x20dbe6,0x20dd00,0x20e1e6,0x20e200,0x20e501,
0x20e7e6,0x20e8dc,0x20e9e6,0x20ea01,0x20ecdc,0x20f0e6,0x20f100,0x2cefe6,0x2cf200,0x2d7f09,0x2d8000,
0x2de0e6,0x2e0000,0x302ada,0x302be4,0x302ce8,0x302dde,0x302ee0,0x303000,0x309908,0x309b00,0xa66fe6,
0xa67000,0xa674e6,0xa67e00,0xa69ee6,0xa6a000,0xa6f0e6,0xa6f200,0xa80609,0xa80700,0xa8c409,0xa8c500,
0xa8e0e6,0xa8f200,0xa92bdc,0xa92e00,0xa95309,0xa95400,0xa9b307,0xa9b400,0xa9c009,0xa9c100,0xaab0e6,
0xaab100,0xaab2e6,0xaab4dc,0xaab500,0xaab7e6,0xaab900,0xaabee6,0xaac000,0xaac1e6,0xaac200,0xaaf609,
0xaaf700,0xabed09,0xabee00,0xfb1e1a,0xfb1f00,0xfe20e6,0xfe27dc,0xfe2ee6,0xfe3000,0x101fddc,
0x101fe00,0x102e0dc,0x102e100,0x10376e6,0x1037b00,0x10a0ddc,0x10a0e00,0x10a0fe6,0x10a1000,
0x10a38e6,0x10a3901,0x10a3adc,0x10a3b00,0x10a3f09,0x10a4000,0x10ae5e6,0x10ae6dc,0x10ae700,
0x1104609,0x1104700,0x1107f09,0x1108000,0x110b909,0x110ba07,0x110bb00,0x11100e6,0x1110300,
0x1113309,0x1113500,0x1117307,0x1117400,0x111c009,0x111c100,0x111ca07,0x111cb00,0x1123509,
0x1123607,0x1123700,0x112e907,0x112ea09,0x112eb00,0x1133c07,0x1133d00,0x1134d09,0x1134e00,
0x11366e6,0x1136d00,0x11370e6,0x1137500,0x1144209,0x1144300,0x1144607,0x1144700,0x114c209,
0x114c307,0x114c400,0x115bf09,0x115c007,0x115c100,0x1163f09,0x1164000,0x116b609,0x116b707,
0x116b800,0x1172b09,0x1172c00,0x11c3f09,0x11c4000,0x16af001,0x16af500,0x16b30e6,0x16b3700,
0x1bc9e01,0x1bc9f00,0x1d165d8,0x1d16701,0x1d16a00,0x1d16de2,0x1d16ed8,0x1d17300,0x1d17bdc,
0x1d18300,0x1d185e6,0x1d18adc,0x1d18c00,0x1d1aae6,0x1d1ae00,0x1d242e6,0x1d24500,0x1e000e6,
0x1e00700,0x1e008e6,0x1e01900,0x1e01be6,0x1e02200,0x1e023e6,0x1e02500,0x1e026e6,0x1e02b00,
0x1e8d0dc,0x1e8d700,0x1e944e6,0x1e94a07,0x1e94b00,
};
// unicode-table:end

static unsigned ds__uc_class_search(uint32_t cp) {
    size_t lo = 0, hi = sizeof ds__uc_runs / sizeof ds__uc_runs[0];
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if ((ds__uc_runs[mid] >> 8) <= cp) lo = mid;
        else hi = mid;
    }
    return ds__uc_runs[lo] & 0xFF;
}

/* ---- tokenizer state --------------------------------------------------------------------- */
enum { DS__TOK_BPE = 0, DS__TOK_SPM = 1 };   /* byte-level BPE; SentencePiece-style BPE */
enum { DS__PRE_GPT2, DS__PRE_LLAMA3, DS__PRE_QWEN2, DS__PRE_SMOLLM, DS__PRE_DSV3, DS__PRE_NONE, DS__PRE_COUNT_ };
static const char *const ds__pre_names[DS__PRE_COUNT_] = {"gpt2", "llama3", "qwen2", "smollm", "deepseek-v3", "spm"};
/* GGUF token types */
enum { DS__TT_NORMAL = 1, DS__TT_UNKNOWN = 2, DS__TT_CONTROL = 3, DS__TT_USER = 4, DS__TT_UNUSED = 5, DS__TT_BYTE = 6 };

typedef struct ds__span {
    const char *p;
    size_t n;
} ds__span;

/* one cache line holds several: the pair, its rank and the token it makes */
typedef struct ds__merge_slot {
    uint64_t key;   /* left << 32 | right */
    int32_t rank, res;
} ds__merge_slot;

struct ds_tokenizer {
    int model, pre;
    int32_t n_vocab;
    char *text;            /* vocabulary strings: token i is text[off[i] .. off[i + 1]) */
    uint32_t *off;
    char *bytes;           /* what each token decodes to: bytes[boff[i] .. boff[i + 1]) */
    uint32_t *boff;
    uint8_t *type;         /* DS__TT_* */
    float *score;          /* SentencePiece scores (NULL when none) */
    uint32_t *spm_rank;    /* SPM: dense rank of each token's score, best first */
    uint32_t *vocab_slot;  /* open addressing: id + 1, 0 = empty */
    uint32_t vocab_mask;
    /* merges in rank order: (left << 32 | right) and the merged token */
    int64_t n_merges;
    uint64_t *merge_key;
    int32_t *merge_res;
    ds__merge_slot *merge_slot;  /* open addressing by pair; rank -1 = empty */
    uint32_t merge_mask;
    int32_t byte_tok[256]; /* byte-level: the token of each byte's symbol; SPM: <0xXX> */
    uint16_t byte_char[256];
    int16_t char_byte[324];/* inverse of byte_char; -1 elsewhere */
    int32_t *special;      /* added tokens matched in text, by first byte then longest first */
    uint32_t special_start[257];
    int32_t n_special;
    int32_t *eog;
    int n_eog;
    int32_t bos, eos, eot, unk, pad;
    int32_t bpe_unk;       /* byte-level: what a byte without a symbol token becomes (-1: dropped) */
    int add_bos, add_eos, add_space_prefix, ignore_merges, byte_fallback, fuse_unk;
    int spm_split;         /* SentencePiece text is cut into words before each "▁" */
    int spm_metaspace;     /* HF Metaspace: no "▁" added in front of text that starts with a space */
    struct ds__nfc_pair *nfc;  /* NFC normalizer: the primary composites (NULL: no normalizer) */
    size_t n_nfc;
    uint8_t *ucls;         /* class of every code point below U+10000 */
};

static unsigned ds__uc_class(const ds_tokenizer *t, uint32_t cp) {
    return cp < 0x10000 ? t->ucls[cp] : ds__uc_class_search(cp);
}

static const char *ds__tok_str(const ds_tokenizer *t, int32_t id, size_t *n) {
    *n = t->off[id + 1] - t->off[id];
    return t->text + t->off[id];
}

static int32_t ds__vocab_find(const ds_tokenizer *t, const char *s, size_t n) {
    uint32_t h = (uint32_t)ds__hash_bytes(s, n) & t->vocab_mask, slot;
    while ((slot = t->vocab_slot[h]) != 0) {
        size_t k;
        const char *p = ds__tok_str(t, (int32_t)(slot - 1), &k);
        if (k == n && memcmp(p, s, n) == 0) return (int32_t)(slot - 1);
        h = (h + 1) & t->vocab_mask;
    }
    return -1;
}

/* the rank of merging tokens (a, b) and the token it makes; -1 when they do not merge */
static int64_t ds__merge_rank(const ds_tokenizer *t, int32_t a, int32_t b, int32_t *res) {
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    uint32_t h = (uint32_t)ds__hash_u64(key) & t->merge_mask;
    if (!t->merge_slot) return -1;
    while (t->merge_slot[h].rank >= 0) {
        if (t->merge_slot[h].key == key) {
            *res = t->merge_slot[h].res;
            return t->merge_slot[h].rank;
        }
        h = (h + 1) & t->merge_mask;
    }
    return -1;
}

/* open-addressing table size: a power of two at least twice n (at least 16) */
static uint32_t ds__pow2_slots(uint64_t n) {
    uint32_t c = 16;
    while (c < 2 * n && c < (1u << 31)) c <<= 1;
    return c;
}

/* ---- pre-tokenizers ---------------------------------------------------------------------- */
/* Hand-written scanners equivalent to the families' split patterns (Hugging Face `Split` with
   Isolated behaviour, leftmost-first alternatives, backtracking as the regex would). Each
   returns where the piece starting at p ends; the input is valid UTF-8 by then. */
typedef struct ds__uch {
    uint32_t cp;
    unsigned cls;
    size_t len;   /* 0 at the end of the span */
} ds__uch;

static ds__uch ds__uc_at(const ds_tokenizer *t, const unsigned char *s, size_t p, size_t end) {
    ds__uch c;
    if (p >= end) {
        c.cp = 0;
        c.cls = 0;
        c.len = 0;
        return c;
    }
    if (s[p] < 0x80) {
        c.cp = s[p];
        c.len = 1;
    } else if ((s[p] & 0xE0) == 0xC0 && p + 1 < end) {
        c.cp = ((uint32_t)(s[p] & 0x1F) << 6) | (s[p + 1] & 0x3F);
        c.len = 2;
    } else if ((s[p] & 0xF0) == 0xE0 && p + 2 < end) {
        c.cp = ((uint32_t)(s[p] & 0x0F) << 12) | ((uint32_t)(s[p + 1] & 0x3F) << 6) | (s[p + 2] & 0x3F);
        c.len = 3;
    } else {
        int k = ds__utf8_decode(s + p, end - p, &c.cp);
        c.len = (size_t)(k < 0 ? -k : k);
    }
    c.cls = ds__uc_class(t, c.cp);
    return c;
}

/* end of the run of code points whose class meets `any` (or misses `none`, when any == 0) */
static size_t ds__uc_run(const ds_tokenizer *t, const unsigned char *s, size_t p, size_t end, unsigned any, unsigned none) {
    while (p < end) {
        ds__uch c = ds__uc_at(t, s, p, end);
        if (any ? !(c.cls & any) : (c.cls & none) != 0) break;
        p += c.len;
    }
    return p;
}

static size_t ds__crlf_run(const unsigned char *s, size_t p, size_t end) {
    while (p < end && (s[p] == '\r' || s[p] == '\n')) p++;
    return p;
}

/* \s*[\r\n]+ | \s+(?!\S) | \s+ at a whitespace code point (crlf: try the first alternative) */
static size_t ds__pre_space(const ds_tokenizer *t, const unsigned char *s, size_t p, size_t end, int crlf) {
    size_t q = p, last = p, nl = 0, k = 0;
    while (q < end) {
        ds__uch c = ds__uc_at(t, s, q, end);
        if (!(c.cls & DS__UC_W)) break;
        if (c.cp == '\r' || c.cp == '\n') nl = q + 1;
        last = q;
        q += c.len;
        k++;
    }
    if (crlf && nl) return nl;
    if (q == end || k == 1) return q;
    return last;
}

/* 's 't 're 've 'm 'll 'd after the apostrophe at p (case-insensitive: Llama-3, Qwen2) */
static size_t ds__pre_contraction(const unsigned char *s, size_t p, size_t end, int icase) {
    unsigned char a = p + 1 < end ? s[p + 1] : 0, b = p + 2 < end ? s[p + 2] : 0;
    if (icase) {
        if (a == 0xC5 && b == 0xBF) return p + 3;   /* U+017F LATIN SMALL LETTER LONG S folds to s */
        if (a >= 'A' && a <= 'Z') a = (unsigned char)(a + 32);
        if (b >= 'A' && b <= 'Z') b = (unsigned char)(b + 32);
    }
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return p + 2;
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return p + 3;
    return p;
}

/* GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
static size_t ds__pre_gpt2(const ds_tokenizer *t, const unsigned char *s, size_t p, size_t end) {
    const unsigned LNW = DS__UC_L | DS__UC_N | DS__UC_W;
    ds__uch c = ds__uc_at(t, s, p, end);
    size_t q = p;
    if (c.cp == '\'' && (q = ds__pre_contraction(s, p, end, 0)) > p) return q;
    if (c.cp == ' ') {
        ds__uch d = ds__uc_at(t, s, p + 1, end);
        if (d.cls & DS__UC_L) return ds__uc_run(t, s, p + 1, end, DS__UC_L, 0);
        if (d.cls & DS__UC_N) return ds__uc_run(t, s, p + 1, end, DS__UC_N, 0);
        if (d.len && !(d.cls & LNW)) return ds__uc_run(t, s, p + 1, end, 0, LNW);
    }
    if (c.cls & DS__UC_L) return ds__uc_run(t, s, p, end, DS__UC_L, 0);
    if (c.cls & DS__UC_N) return ds__uc_run(t, s, p, end, DS__UC_N, 0);
    if (!(c.cls & DS__UC_W)) return ds__uc_run(t, s, p, end, 0, LNW);
    return ds__pre_space(t, s, p, end, 0);
}

/* Llama-3 (max_digits 3) and Qwen2 (1):
   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|
   \s*[\r\n]+|\s+(?!\S)|\s+ */
static size_t ds__pre_llama3(const ds_tokenizer *t, const unsigned char *s, size_t p, size_t end, int max_digits) {
    const unsigned LNW = DS__UC_L | DS__UC_N | DS__UC_W;
    ds__uch c = ds__uc_at(t, s, p, end);
    size_t q = p;
    int k;
    if (c.cp == '\'' && (q = ds__pre_contraction(s, p, end, 1)) > p) return q;
    if (c.cls & DS__UC_L) return ds__uc_run(t, s, p, end, DS__UC_L, 0);
    if (!(c.cls & (DS__UC_L | DS__UC_N)) && c.cp != '\r' && c.cp != '\n') {
        ds__uch d = ds__uc_at(t, s, p + c.len, end);
        if (d.cls & DS__UC_L) return ds__uc_run(t, s, p + c.len, end, DS__UC_L, 0);
    }
    if (c.cls & DS__UC_N) {
        for (q = p, k = 0; k < max_digits; k++) {
            ds__uch d = ds__uc_at(t, s, q, end);
            if (!(d.cls & DS__UC_N)) break;
            q += d.len;
        }
        return q;
    }
    if (c.cp == ' ') {
        ds__uch d = ds__uc_at(t, s, p + 1, end);
        if (d.len && !(d.cls & LNW)) return ds__crlf_run(s, ds__uc_run(t, s, p + 1, end, 0, LNW), end);
    }
    if (!(c.cls & DS__UC_W)) return ds__crlf_run(s, ds__uc_run(t, s, p, end, 0, LNW), end);
    return ds__pre_space(t, s, p, end, 1);
}

static int ds__ascii_punct(uint32_t c) {
    return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126);
}
static int ds__ascii_alpha(unsigned c) { return (c | 32) >= 'a' && (c | 32) <= 'z'; }

/* DeepSeek-V3's third split; p itself when no alternative matches (the text stays a gap):
   [!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+|
    ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+ */
static size_t ds__pre_dsv3_word(const ds_tokenizer *t, const unsigned char *s, size_t p, size_t end) {
    const unsigned LM = DS__UC_L | DS__UC_M, PS = DS__UC_P | DS__UC_S;
    ds__uch c = ds__uc_at(t, s, p, end);
    if (ds__ascii_punct(c.cp) && p + 1 < end && ds__ascii_alpha(s[p + 1])) {
        size_t q = p + 1;
        while (q < end && ds__ascii_alpha(s[q])) q++;
        return q;
    }
    if (c.cls & LM) return ds__uc_run(t, s, p, end, LM, 0);
    if (!(c.cls & (DS__UC_L | PS)) && c.cp != '\r' && c.cp != '\n') {
        ds__uch d = ds__uc_at(t, s, p + c.len, end);
        if (d.cls & LM) return ds__uc_run(t, s, p + c.len, end, LM, 0);
    }
    if (c.cp == ' ') {
        ds__uch d = ds__uc_at(t, s, p + 1, end);
        if (d.cls & PS) return ds__crlf_run(s, ds__uc_run(t, s, p + 1, end, PS, 0), end);
    }
    if (c.cls & PS) return ds__crlf_run(s, ds__uc_run(t, s, p, end, PS, 0), end);
    if (c.cls & DS__UC_W) return ds__pre_space(t, s, p, end, 1);
    return p;
}

static int ds__dsv3_cjk(uint32_t c) {
    return (c >= 0x4E00 && c <= 0x9FA5) || (c >= 0x3040 && c <= 0x309F) || (c >= 0x30A0 && c <= 0x30FF);
}

/* ---- BPE --------------------------------------------------------------------------------- */
typedef struct ds__sym {
    int32_t id;
    int32_t prev, next;   /* alive neighbours, -1 at the ends */
    uint32_t start, len;  /* bytes of the piece it covers */
} ds__sym;

/* What one ds_tokenize call owns: the output and the scratch (so a tokenizer can be shared). */
typedef struct ds__tok_run {
    const ds_tokenizer *t;
    int32_t *ids;
    size_t cap, n;
    ds__sym *sym;
    size_t sym_cap;
    uint64_t *heap;       /* (rank << 32 | position) min-heap */
    size_t heap_n, heap_cap;
    /* word cache: piece bytes -> ids, cleared when half full */
    uint32_t *cache_slot; /* entry + 1 */
    uint32_t cache_mask, cache_used;
    ds__buf cache_keys, cache_ids;
    uint32_t *cache_ent;  /* 4 per entry: key offset, key length, ids offset, id count */
    void (*on_piece)(struct ds__tok_run *r, const unsigned char *p, size_t n);  /* instead of BPE (training) */
    void *user;
    int oom;
} ds__tok_run;

static void ds__emit(ds__tok_run *r, int32_t id) {
    if (r->n < r->cap) r->ids[r->n] = id;
    r->n++;
}

static int ds__grow(void **p, size_t *cap, size_t need, size_t elem) {
    void *np;
    size_t c;
    if (need <= *cap) return 1;
    c = DS__MAX(need, *cap * 2);
    c = DS__MAX(c, 64);
    np = ds__calloc(c, elem);
    if (!np) return 0;
    if (*cap) memcpy(np, *p, *cap * elem);
    ds_free(*p);
    *p = np;
    *cap = c;
    return 1;
}

/* A binary heap of T in owner->heap (heap_n elements of heap_cap; owner->oom is set when it
   cannot grow), BEFORE(a, b) true when a leaves first: NAME##_push and NAME##_pop. One
   definition serves the merge queue of encoding and the pair queue of BPE training. */
#define DS__DEFINE_HEAP(NAME, OWNER, T, BEFORE)                                                   \
    static void NAME##_push(OWNER *o, T v) {                                                      \
        size_t i;                                                                                 \
        if (!ds__grow(DS__CAST(void **, &o->heap), &o->heap_cap, o->heap_n + 1, sizeof(T))) {     \
            o->oom = 1;                                                                           \
            return;                                                                               \
        }                                                                                         \
        i = o->heap_n++;                                                                          \
        while (i > 0 && BEFORE(v, o->heap[(i - 1) / 2])) {                                        \
            o->heap[i] = o->heap[(i - 1) / 2];                                                    \
            i = (i - 1) / 2;                                                                      \
        }                                                                                         \
        o->heap[i] = v;                                                                           \
    }                                                                                             \
    static T NAME##_pop(OWNER *o) {                                                               \
        T top = o->heap[0], v = o->heap[--o->heap_n];                                             \
        size_t i = 0, n = o->heap_n;                                                              \
        for (;;) {                                                                                \
            size_t c = 2 * i + 1;                                                                 \
            if (c >= n) break;                                                                    \
            if (c + 1 < n && BEFORE(o->heap[c + 1], o->heap[c])) c++;                             \
            if (!BEFORE(o->heap[c], v)) break;                                                    \
            o->heap[i] = o->heap[c];                                                              \
            i = c;                                                                                \
        }                                                                                         \
        if (n) o->heap[i] = v;                                                                    \
        return top;                                                                               \
    }

/* (rank << 32 | position): the lowest rank, then the leftmost position, merges first */
#define DS__MERGE_BEFORE(a, b) ((a) < (b))
DS__DEFINE_HEAP(ds__heap, ds__tok_run, uint64_t, DS__MERGE_BEFORE)

/* rank of merging symbols a and b (lower merges first), -1 when they do not merge: the merge
   list's order, or for SentencePiece vocabularies the score of the joined text's token */
static int64_t ds__pair_rank(const ds_tokenizer *t, const unsigned char *piece, const ds__sym *a, const ds__sym *b, int32_t *res) {
    if (t->spm_rank) {
        int32_t id = ds__vocab_find(t, (const char *)piece + a->start, a->len + b->len);
        if (id < 0) return -1;
        *res = id;
        return t->spm_rank[id];
    } else {
        if (a->id < 0 || b->id < 0) return -1;
        return ds__merge_rank(t, a->id, b->id, res);
    }
}

static void ds__sym_join(ds__sym *sym, int32_t i, int32_t res) {
    int32_t j = sym[i].next;
    sym[i].id = res;
    sym[i].len += sym[j].len;
    sym[i].next = sym[j].next;
    if (sym[j].next >= 0) sym[sym[j].next].prev = i;
    sym[j].len = 0;
}

/* Merges adjacent symbols, lowest rank first (leftmost among equals), until no pair merges.
   A heap of (rank, left position) with stale entries skipped: O(n log n). */
static void ds__bpe_merge(ds__tok_run *r, const unsigned char *piece, int32_t n) {
    ds__sym *sym = r->sym;
    const ds_tokenizer *t = r->t;
    int32_t i, res;
    int64_t rank;
    r->heap_n = 0;
    for (i = 0; i + 1 < n; i++)
        if ((rank = ds__pair_rank(t, piece, &sym[i], &sym[i + 1], &res)) >= 0) ds__heap_push(r, ((uint64_t)rank << 32) | (uint32_t)i);
    while (r->heap_n && !r->oom) {
        uint64_t top = ds__heap_pop(r);
        int32_t pos = (int32_t)(top & 0xFFFFFFFFu), j;
        int64_t want = (int64_t)(top >> 32), got;
        int32_t want_res = t->spm_rank ? -1 : t->merge_res[want];
        if (sym[pos].len == 0 || (j = sym[pos].next) < 0) continue;
        got = ds__pair_rank(t, piece, &sym[pos], &sym[j], &res);
        /* the pair at pos may have changed since it was pushed: it must still give the same
           token (for merge lists) or the same rank (for scores) */
        if (got < 0 || (t->spm_rank ? got != want : res != want_res)) continue;
        ds__sym_join(sym, pos, res);
        if (sym[pos].prev >= 0 && (rank = ds__pair_rank(t, piece, &sym[sym[pos].prev], &sym[pos], &res)) >= 0)
            ds__heap_push(r, ((uint64_t)rank << 32) | (uint32_t)sym[pos].prev);
        if (sym[pos].next >= 0 && (rank = ds__pair_rank(t, piece, &sym[pos], &sym[sym[pos].next], &res)) >= 0)
            ds__heap_push(r, ((uint64_t)rank << 32) | (uint32_t)pos);
    }
}

#define DS__BPE_SMALL 32

/* the same merges for short pieces: symbols kept contiguous, one rank per adjacent pair,
   only the pairs next to a merge looked up again */
static void ds__bpe_merge_small(ds__tok_run *r, const unsigned char *piece, int32_t n) {
    ds__sym *sym = r->sym;
    int64_t rank[DS__BPE_SMALL];
    int32_t res[DS__BPE_SMALL], i;
    for (i = 0; i + 1 < n; i++) rank[i] = ds__pair_rank(r->t, piece, &sym[i], &sym[i + 1], &res[i]);
    while (n > 1) {
        int32_t at = -1;
        for (i = 0; i + 1 < n; i++)
            if (rank[i] >= 0 && (at < 0 || rank[i] < rank[at])) at = i;
        if (at < 0) break;
        sym[at].id = res[at];
        sym[at].len += sym[at + 1].len;
        memmove(&sym[at + 1], &sym[at + 2], (size_t)(n - at - 2) * sizeof *sym);
        memmove(&rank[at + 1], &rank[at + 2], (size_t)(n - at - 2) * sizeof *rank);
        memmove(&res[at + 1], &res[at + 2], (size_t)(n - at - 2) * sizeof *res);
        n--;
        if (at > 0) rank[at - 1] = ds__pair_rank(r->t, piece, &sym[at - 1], &sym[at], &res[at - 1]);
        if (at + 1 < n) rank[at] = ds__pair_rank(r->t, piece, &sym[at], &sym[at + 1], &res[at]);
    }
    for (i = 0; i < n; i++) {
        sym[i].prev = i - 1;
        sym[i].next = i + 1 < n ? i + 1 : -1;
    }
}

/* the symbols one piece starts from: one per byte (byte-level) or per character */
static int32_t ds__bpe_init(ds__tok_run *r, const unsigned char *piece, size_t n) {
    const ds_tokenizer *t = r->t;
    int32_t k = 0;
    size_t i = 0;
    if (!ds__grow(DS__CAST(void **, &r->sym), &r->sym_cap, n + 1, sizeof(ds__sym))) {
        r->oom = 1;
        return 0;
    }
    while (i < n) {
        ds__sym *s = &r->sym[k];
        size_t len = 1;
        if (t->model == DS__TOK_BPE) {
            s->id = t->byte_tok[piece[i]];
            if (s->id < 0) {
                /* a byte whose symbol is not in the vocabulary: unk (fused with a preceding
                   unk when asked), or left out so that its neighbours may merge */
                i++;
                if (t->bpe_unk < 0) continue;
                if (t->fuse_unk && k > 0 && r->sym[k - 1].id == t->bpe_unk) {
                    r->sym[k - 1].len++;
                    continue;
                }
                s->id = t->bpe_unk;
                i--;
            }
        } else {
            len = (size_t)ds__utf8_seq_len(piece[i]);
            if (len == 0 || len > n - i) len = 1;
            s->id = ds__vocab_find(t, (const char *)piece + i, len);
        }
        s->start = (uint32_t)i;
        s->len = (uint32_t)len;
        s->prev = k - 1;
        s->next = k + 1;
        i += len;
        k++;
    }
    if (k) r->sym[k - 1].next = -1;
    return k;
}

/* a symbol no token covers: its bytes as <0xXX> tokens (byte fallback), else unk */
static void ds__emit_unknown(ds__tok_run *r, const unsigned char *piece, const ds__sym *s) {
    const ds_tokenizer *t = r->t;
    uint32_t b;
    if (t->model == DS__TOK_SPM && t->byte_fallback) {
        for (b = 0; b < s->len; b++) {
            int32_t id = t->byte_tok[piece[s->start + b]];
            if (id >= 0 || t->unk >= 0) ds__emit(r, id >= 0 ? id : t->unk);
        }
    } else if (t->unk >= 0) {
        ds__emit(r, t->unk);
    }
}

static void ds__bpe_word(ds__tok_run *r, const unsigned char *piece, size_t n) {
    int32_t k, i;
    k = ds__bpe_init(r, piece, n);
    if (r->oom || !k) return;
    if (k <= DS__BPE_SMALL) ds__bpe_merge_small(r, piece, k);
    else ds__bpe_merge(r, piece, k);
    for (i = 0; i >= 0; i = r->sym[i].next) {
        if (r->sym[i].id >= 0) ds__emit(r, r->sym[i].id);
        else ds__emit_unknown(r, piece, &r->sym[i]);
    }
}

/* byte-level: the whole piece's symbol string, when it is one token (ignore_merges) */
static int32_t ds__whole_piece(const ds_tokenizer *t, const unsigned char *piece, size_t n) {
    char tmp[256];
    size_t i, k = 0;
    if (n > sizeof tmp / 2) return -1;
    for (i = 0; i < n; i++) k += (size_t)ds__utf8_encode(t->byte_char[piece[i]], tmp + k);
    return ds__vocab_find(t, tmp, k);
}

#define DS__CACHE_MAX_PIECE 64

static void ds__cache_clear(ds__tok_run *r) {
    memset(r->cache_slot, 0, ((size_t)r->cache_mask + 1) * sizeof *r->cache_slot);
    r->cache_used = 0;
    r->cache_keys.n = 0;
    r->cache_ids.n = 0;
}

static void ds__tok_piece(ds__tok_run *r, const unsigned char *piece, size_t n) {
    const ds_tokenizer *t = r->t;
    uint32_t h = 0, slot;
    size_t first = r->n;
    if (n == 0) return;
    if (r->on_piece) {
        r->on_piece(r, piece, n);
        return;
    }
    if (t->model == DS__TOK_BPE) {
        int32_t id;
        if (n == 1 && t->byte_tok[piece[0]] >= 0) {
            ds__emit(r, t->byte_tok[piece[0]]);
            return;
        }
        if (t->ignore_merges && (id = ds__whole_piece(t, piece, n)) >= 0) {
            ds__emit(r, id);
            return;
        }
    }
    if (r->cache_slot && n <= DS__CACHE_MAX_PIECE) {
        h = (uint32_t)ds__hash_bytes(piece, n) & r->cache_mask;
        while ((slot = r->cache_slot[h]) != 0) {
            const uint32_t *e = r->cache_ent + 4 * (slot - 1);
            if (e[1] == n && memcmp(r->cache_keys.p + e[0], piece, n) == 0) {
                const int32_t *ids = (const int32_t *)(const void *)(r->cache_ids.p + e[2]);
                uint32_t i;
                for (i = 0; i < e[3]; i++) ds__emit(r, ids[i]);
                return;
            }
            h = (h + 1) & r->cache_mask;
        }
    }
    ds__bpe_word(r, piece, n);
    if (r->cache_slot && n <= DS__CACHE_MAX_PIECE && r->n <= r->cap) {
        uint32_t *e;
        if (r->cache_used * 2 >= r->cache_mask) {
            ds__cache_clear(r);
            h = (uint32_t)ds__hash_bytes(piece, n) & r->cache_mask;
            while (r->cache_slot[h]) h = (h + 1) & r->cache_mask;
        }
        e = r->cache_ent + 4 * r->cache_used;
        e[0] = (uint32_t)r->cache_keys.n;
        e[1] = (uint32_t)n;
        e[2] = (uint32_t)r->cache_ids.n;
        e[3] = (uint32_t)(r->n - first);
        ds__buf_put(&r->cache_keys, piece, n);
        ds__buf_put(&r->cache_ids, r->ids + first, (r->n - first) * sizeof(int32_t));
        if (r->cache_keys.oom || r->cache_ids.oom) r->oom = 1;
        else r->cache_slot[h] = ++r->cache_used;
    }
}

/* ---- NFC --------------------------------------------------------------------------------- */
/* Unicode normalization form C for tokenizers whose normalizer asks for it (Qwen2): canonical
   decomposition, canonical ordering by combining class, canonical composition (UAX #15). */
typedef struct ds__nfc_pair {
    uint64_t key;   /* first << 32 | second */
    uint32_t composite;
} ds__nfc_pair;

static unsigned ds__uc_ccc_of(uint32_t cp) {
    size_t lo = 0, hi = sizeof ds__uc_ccc / sizeof ds__uc_ccc[0];
    if (cp < 0x300) return 0;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if ((ds__uc_ccc[mid] >> 8) <= cp) lo = mid;
        else hi = mid;
    }
    return ds__uc_ccc[lo] & 0xFF;
}

/* index of cp's canonical decomposition triple, or -1 */
static long ds__uc_decomp_find(uint32_t cp) {
    long lo = 0, hi = (long)(sizeof ds__uc_decomp / sizeof ds__uc_decomp[0] / 3) - 1;
    while (lo <= hi) {
        long mid = lo + (hi - lo) / 2;
        uint32_t v = ds__uc_decomp[3 * mid];
        if (v == cp) return mid;
        if (v < cp) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

enum { DS__HS = 0xAC00, DS__HL = 0x1100, DS__HV = 0x1161, DS__HT = 0x11A7, DS__HN = 588, DS__HCOUNT = 11172 };

typedef struct ds__u32s {
    uint32_t *v;
    size_t n, cap;
    int oom;
} ds__u32s;
static void ds__u32s_push(ds__u32s *a, uint32_t x) {
    if (!ds__grow(DS__CAST(void **, &a->v), &a->cap, a->n + 1, sizeof(uint32_t))) {
        a->oom = 1;
        return;
    }
    a->v[a->n++] = x;
}

static void ds__nfc_decompose(uint32_t cp, ds__u32s *out, int depth) {
    long i;
    if (cp >= DS__HS && cp < DS__HS + DS__HCOUNT) {
        uint32_t s = cp - DS__HS;
        ds__u32s_push(out, DS__HL + s / DS__HN);
        ds__u32s_push(out, DS__HV + (s % DS__HN) / 28);
        if (s % 28) ds__u32s_push(out, DS__HT + s % 28);
        return;
    }
    if (depth < 8 && (i = ds__uc_decomp_find(cp)) >= 0) {
        uint32_t second = ds__uc_decomp[3 * i + 2] & 0x7FFFFFFFu;
        ds__nfc_decompose(ds__uc_decomp[3 * i + 1], out, depth + 1);
        if (second) ds__nfc_decompose(second, out, depth + 1);
        return;
    }
    ds__u32s_push(out, cp);
}

static int ds__nfc_pair_cmp(const void *x, const void *y) {
    uint64_t a = ((const ds__nfc_pair *)x)->key, b = ((const ds__nfc_pair *)y)->key;
    return a < b ? -1 : a > b;
}

/* the primary composites, sorted by (first, second) */
static ds__nfc_pair *ds__nfc_pairs(size_t *n) {
    size_t i, k = 0, total = sizeof ds__uc_decomp / sizeof ds__uc_decomp[0] / 3;
    ds__nfc_pair *p = DS__CAST(ds__nfc_pair *, ds__calloc(total, sizeof *p));
    if (!p) return NULL;
    for (i = 0; i < total; i++) {
        if (!(ds__uc_decomp[3 * i + 2] >> 31)) continue;
        p[k].key = ((uint64_t)ds__uc_decomp[3 * i + 1] << 32) | (ds__uc_decomp[3 * i + 2] & 0x7FFFFFFFu);
        p[k++].composite = ds__uc_decomp[3 * i];
    }
    qsort(p, k, sizeof *p, ds__nfc_pair_cmp);
    *n = k;
    return p;
}

static int ds__nfc_compose(const ds_tokenizer *t, uint32_t a, uint32_t b, uint32_t *c) {
    size_t lo = 0, hi = t->n_nfc;
    uint64_t key = ((uint64_t)a << 32) | b;
    if (a >= DS__HL && a < DS__HL + 19 && b >= DS__HV && b < DS__HV + 21) {
        *c = DS__HS + ((a - DS__HL) * 21 + (b - DS__HV)) * 28;
        return 1;
    }
    if (a >= DS__HS && a < DS__HS + DS__HCOUNT && (a - DS__HS) % 28 == 0 && b > DS__HT && b < DS__HT + 28) {
        *c = a + (b - DS__HT);
        return 1;
    }
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t->nfc[mid].key == key) {
            *c = t->nfc[mid].composite;
            return 1;
        }
        if (t->nfc[mid].key < key) lo = mid + 1;
        else hi = mid;
    }
    return 0;
}

/* NFC of s[0..n) (valid UTF-8) into out; 0 when the text is unchanged by construction (every
   code point below U+0300, which nothing composes with or decomposes) */
static int ds__nfc(const ds_tokenizer *t, const unsigned char *s, size_t n, ds__buf *out, int *oom) {
    ds__u32s d;
    size_t i, k, starter = (size_t)-1;
    for (i = 0; i < n && s[i] < 0xCC; i++) {}
    if (i == n) return 0;
    memset(&d, 0, sizeof d);
    for (i = 0; i < n;) {
        uint32_t cp;
        int len = ds__utf8_decode(s + i, n - i, &cp);
        ds__nfc_decompose(cp, &d, 0);
        i += (size_t)(len < 0 ? -len : len);
    }
    /* canonical ordering: a stable sort of each run of non-starters by combining class */
    for (i = 1; i < d.n; i++) {
        unsigned c = ds__uc_ccc_of(d.v[i]);
        for (k = i; c && k > 0; k--) {
            unsigned p = ds__uc_ccc_of(d.v[k - 1]);
            uint32_t tmp;
            if (p <= c) break;
            tmp = d.v[k - 1];
            d.v[k - 1] = d.v[k];
            d.v[k] = tmp;
        }
    }
    /* composition: a character joins the last starter unless something between blocks it */
    for (i = 0, k = 0; i < d.n; i++) {
        uint32_t ch = d.v[i], comp;
        unsigned c = ds__uc_ccc_of(ch);
        if (starter != (size_t)-1) {
            int adjacent = k - 1 == starter;
            unsigned last = adjacent ? 0 : ds__uc_ccc_of(d.v[k - 1]);
            if ((adjacent || (last != 0 && last < c)) && ds__nfc_compose(t, d.v[starter], ch, &comp)) {
                d.v[starter] = comp;
                continue;
            }
        }
        if (c == 0) starter = k;
        d.v[k++] = ch;
    }
    for (i = 0; i < k; i++) {
        char tmp[4];
        ds__buf_put(out, tmp, (size_t)ds__utf8_encode(d.v[i], tmp));
    }
    if (d.oom || out->oom) *oom = 1;
    ds_free(d.v);
    return 1;
}

/* ---- segments: pre-tokenization of text between added tokens ---------------------------- */
static void ds__pre_ascii_run(ds__tok_run *r, const unsigned char *s, size_t p, size_t end, int pre) {
    while (p < end) {
        size_t q = pre == DS__PRE_GPT2 ? ds__pre_gpt2(r->t, s, p, end) : ds__pre_llama3(r->t, s, p, end, pre == DS__PRE_QWEN2 ? 1 : 3);
        ds__tok_piece(r, s + p, q - p);
        p = q;
    }
}

/* splits [p, end) into runs of code points that are / are not in class `cls` (or CJK when
   cls == 0), calling fn on each with its flag */
typedef void (*ds__run_fn)(ds__tok_run *r, const unsigned char *s, size_t p, size_t end, int in);
static void ds__split_runs(ds__tok_run *r, const unsigned char *s, size_t p, size_t end, unsigned cls, ds__run_fn fn) {
    while (p < end) {
        size_t q = p;
        int in = -1;
        while (q < end) {
            ds__uch c = ds__uc_at(r->t, s, q, end);
            int is = cls ? (c.cls & cls) != 0 : ds__dsv3_cjk(c.cp);
            if (in >= 0 && is != in) break;
            in = is;
            q += c.len;
        }
        fn(r, s, p, q, in);
        p = q;
    }
}

/* SmolLM: every digit alone (Digits(individual_digits)), the GPT-2 pattern between */
static void ds__smollm_run(ds__tok_run *r, const unsigned char *s, size_t p, size_t end, int digits) {
    if (!digits) {
        ds__pre_ascii_run(r, s, p, end, DS__PRE_GPT2);
        return;
    }
    while (p < end) {
        ds__uch c = ds__uc_at(r->t, s, p, end);
        ds__tok_piece(r, s + p, c.len);
        p += c.len;
    }
}

/* DeepSeek-V3 step 3 over a piece of step 2 (a CJK run or the text between): matches and
   the gaps between them are pieces */
static void ds__dsv3_words(ds__tok_run *r, const unsigned char *s, size_t p, size_t end, int cjk) {
    size_t gap = p;
    (void)cjk;
    while (p < end) {
        size_t q = ds__pre_dsv3_word(r->t, s, p, end);
        if (q == p) {
            p += ds__uc_at(r->t, s, p, end).len;
            continue;
        }
        if (gap < p) ds__tok_piece(r, s + gap, p - gap);
        ds__tok_piece(r, s + p, q - p);
        p = gap = q;
    }
    if (gap < end) ds__tok_piece(r, s + gap, end - gap);
}

/* DeepSeek-V3 steps 1 and 2: digit runs cut in threes, then CJK runs */
static void ds__dsv3_digits(ds__tok_run *r, const unsigned char *s, size_t p, size_t end, int digits) {
    if (!digits) {
        ds__split_runs(r, s, p, end, 0, ds__dsv3_words);
        return;
    }
    while (p < end) {
        size_t q = p;
        int k;
        for (k = 0; k < 3 && q < end; k++) q += ds__uc_at(r->t, s, q, end).len;
        ds__tok_piece(r, s + p, q - p);
        p = q;
    }
}

/* SentencePiece: spaces become U+2581, with one more in front when the model says so (every
   segment is at the start or after an added token, and gets it) */
static void ds__spm_segment(ds__tok_run *r, const unsigned char *s, size_t n) {
    ds__buf b;
    size_t i;
    if (r->on_piece) {
        r->on_piece(r, s, n);
        return;
    }
    memset(&b, 0, sizeof b);
    if (r->t->add_space_prefix && !(r->t->spm_metaspace && n && s[0] == ' ')) ds__buf_put(&b, "\xE2\x96\x81", 3);
    for (i = 0; i < n; i++) {
        if (s[i] == ' ') ds__buf_put(&b, "\xE2\x96\x81", 3);
        else ds__buf_putc(&b, (char)s[i]);
    }
    if (b.oom) {
        r->oom = 1;
    } else if (r->t->spm_split) {
        size_t at = 0, j;
        for (j = 1; j + 3 <= b.n; j++) {
            if (memcmp(b.p + j, "\xE2\x96\x81", 3) != 0) continue;
            ds__bpe_word(r, (const unsigned char *)b.p + at, j - at);
            at = j;
        }
        if (at < b.n) ds__bpe_word(r, (const unsigned char *)b.p + at, b.n - at);
    } else if (b.n) {
        ds__bpe_word(r, (const unsigned char *)b.p, b.n);
    }
    ds__buf_free(&b);
}

static void ds__tok_segment_raw(ds__tok_run *r, const unsigned char *s, size_t n) {
    switch (r->t->pre) {
    case DS__PRE_GPT2: case DS__PRE_LLAMA3: case DS__PRE_QWEN2: ds__pre_ascii_run(r, s, 0, n, r->t->pre); break;
    case DS__PRE_SMOLLM: ds__split_runs(r, s, 0, n, DS__UC_R, ds__smollm_run); break;
    case DS__PRE_DSV3: ds__split_runs(r, s, 0, n, DS__UC_N, ds__dsv3_digits); break;
    default: ds__spm_segment(r, s, n); break;
    }
}

/* a segment between added tokens: normalized (NFC) when the tokenizer says so, then split */
static void ds__tok_segment(ds__tok_run *r, const unsigned char *s, size_t n) {
    ds__buf b;
    int oom = 0;
    if (!r->t->nfc) {
        ds__tok_segment_raw(r, s, n);
        return;
    }
    memset(&b, 0, sizeof b);
    if (!ds__nfc(r->t, s, n, &b, &oom)) ds__tok_segment_raw(r, s, n);
    else if (oom) r->oom = 1;
    else ds__tok_segment_raw(r, (const unsigned char *)b.p, b.n);
    ds__buf_free(&b);
}

/* the longest added token that starts at s[0..n), or -1 */
static int32_t ds__special_at(const ds_tokenizer *t, const unsigned char *s, size_t n, int parse_special) {
    uint32_t i;
    for (i = t->special_start[s[0]]; i < t->special_start[s[0] + 1]; i++) {
        int32_t id = t->special[i];
        size_t k;
        const char *p = ds__tok_str(t, id, &k);
        if (k <= n && memcmp(p, s, k) == 0 && (parse_special || t->type[id] == DS__TT_USER)) return id;
    }
    return -1;
}

/* Replaces each ill-formed UTF-8 subpart with U+FFFD (as a lossy decode does) */
static char *ds__utf8_sanitize(const char *text, size_t len, size_t *out_len) {
    ds__buf b;
    size_t i = 0;
    memset(&b, 0, sizeof b);
    while (i < len) {
        size_t ok = ds__utf8_valid_prefix(text + i, len - i);
        uint32_t cp;
        ds__buf_put(&b, text + i, ok);
        i += ok;
        if (i < len) {
            int k = ds__utf8_decode((const unsigned char *)text + i, len - i, &cp);
            ds__buf_put(&b, "\xEF\xBF\xBD", 3);
            i += (size_t)(k < 0 ? -k : k);
        }
    }
    if (b.oom) {
        ds__buf_free(&b);
        return NULL;
    }
    *out_len = b.n;
    return b.p ? b.p : DS__CAST(char *, ds_alloc(1));
}

static void ds__tok_run_free(ds__tok_run *r) {
    ds_free(r->sym);
    ds_free(r->heap);
    ds_free(r->cache_slot);
    ds_free(r->cache_ent);
    ds__buf_free(&r->cache_keys);
    ds__buf_free(&r->cache_ids);
}

/* records piece ends instead of encoding (ds_tokenizer_split) */
typedef struct ds__split_out {
    const unsigned char *base;
    size_t *ends;
    size_t cap, n;
} ds__split_out;
static void ds__split_piece(ds__tok_run *r, const unsigned char *p, size_t n) {
    ds__split_out *o = DS__CAST(ds__split_out *, r->user);
    if (o->n < o->cap) o->ends[o->n] = (size_t)(p + n - o->base);
    o->n++;
}

/* the common path of ds_tokenize and ds_tokenizer_split: sanitize, split at added tokens,
   pre-tokenize and encode (or report) each segment */
static ds_status ds__tokenize(const ds_tokenizer *t, const char *text, size_t len, int flags, int32_t *ids, size_t cap, ds__split_out *split, size_t *n_out) {
    ds__tok_run r;
    char *clean = NULL;
    const unsigned char *s;
    size_t i = 0, seg = 0;
    if (n_out) *n_out = 0;
    if (!t || (!text && len) || !n_out) return ds__fail(DS_ERR_INVALID_ARG, "tokenize: NULL argument");
    if (ds__utf8_valid_prefix(text, len) < len) {
        if (!(clean = ds__utf8_sanitize(text, len, &len))) return ds__fail(DS_ERR_NO_MEMORY, "tokenize: out of memory");
        text = clean;
    }
    s = (const unsigned char *)text;
    memset(&r, 0, sizeof r);
    r.t = t;
    r.ids = ids;
    r.cap = cap;
    if (split) {
        split->base = s;
        r.on_piece = ds__split_piece;
        r.user = split;
    } else if (len >= 4096) {
        /* the word cache grows with the text: about one slot per 8 bytes, at most 32768 */
        r.cache_mask = ds__pow2_slots(DS__MIN(len / 16, (size_t)1 << 14)) - 1;
        r.cache_slot = DS__CAST(uint32_t *, ds__calloc((size_t)r.cache_mask + 1, sizeof(uint32_t)));
        r.cache_ent = DS__CAST(uint32_t *, ds__calloc(((size_t)r.cache_mask + 1) / 2 + 1, 4 * sizeof(uint32_t)));
        if (!r.cache_slot || !r.cache_ent) r.oom = 1;
    }
    if ((flags & DS_TOKENIZE_ADD_BOS) && t->bos >= 0 && !split) ds__emit(&r, t->bos);
    while (i < len && !r.oom) {
        int32_t id = -1;
        /* added tokens start on a character boundary */
        if (t->n_special && (s[i] & 0xC0) != 0x80 && t->special_start[s[i]] < t->special_start[s[i] + 1])
            id = ds__special_at(t, s + i, len - i, flags & DS_TOKENIZE_PARSE_SPECIAL);
        if (id < 0) {
            i++;
            continue;
        }
        if (seg < i) ds__tok_segment(&r, s + seg, i - seg);
        if (split) ds__split_piece(&r, s + i, t->off[id + 1] - t->off[id]);
        else ds__emit(&r, id);
        i += t->off[id + 1] - t->off[id];
        seg = i;
    }
    if (seg < len && !r.oom) ds__tok_segment(&r, s + seg, len - seg);
    ds__tok_run_free(&r);
    ds_free(clean);
    if (r.oom) return ds__fail(DS_ERR_NO_MEMORY, "tokenize: out of memory");
    *n_out = split ? split->n : r.n;
    if (split) cap = split->cap;
    if (*n_out > cap) return ds__fail(DS_ERR_BOUNDS, "tokenize: %zu results do not fit in %zu", *n_out, cap);
    return DS_OK;
}

DS_API ds_status ds_tokenize(const ds_tokenizer *t, const char *text, size_t len, int flags, int32_t *ids, size_t cap, size_t *n_out) {
    if (!ids && cap) return ds__fail(DS_ERR_INVALID_ARG, "tokenize: NULL ids");
    return ds__tokenize(t, text, len, flags, ids, cap, NULL, n_out);
}

DS_API ds_status ds_tokenizer_split(const ds_tokenizer *t, const char *text, size_t len, int flags, size_t *ends, size_t cap, size_t *n_out) {
    ds__split_out o;
    if (!ends && cap) return ds__fail(DS_ERR_INVALID_ARG, "tokenizer_split: NULL ends");
    if (t && t->nfc) return ds__fail(DS_ERR_UNSUPPORTED, "tokenizer_split: the tokenizer normalizes text (NFC), so its pieces have no offsets in the input");
    memset(&o, 0, sizeof o);
    o.ends = ends;
    o.cap = cap;
    return ds__tokenize(t, text, len, flags, NULL, 0, &o, n_out);
}

/* ---- decoding ---------------------------------------------------------------------------- */
static ds_status ds__put_bytes(char *out, size_t cap, size_t *n, const char *p, size_t k) {
    if (*n <= cap && k <= cap - *n) memcpy(out + *n, p, k);
    *n += k;
    return DS_OK;
}

DS_API ds_status ds_token_to_bytes(const ds_tokenizer *t, int32_t id, char *buf, size_t cap, size_t *n_out) {
    size_t k;
    if (n_out) *n_out = 0;
    if (!t || !n_out || (!buf && cap)) return ds__fail(DS_ERR_INVALID_ARG, "token_to_bytes: NULL argument");
    if (id < 0 || id >= t->n_vocab) return ds__fail(DS_ERR_INVALID_ARG, "token_to_bytes: id %d outside the vocabulary of %d", (int)id, (int)t->n_vocab);
    k = t->boff[id + 1] - t->boff[id];
    *n_out = k;
    if (k > cap) return ds__fail(DS_ERR_BOUNDS, "token_to_bytes: token %d needs %zu bytes, buffer has %zu", (int)id, k, cap);
    memcpy(buf, t->bytes + t->boff[id], k);
    return DS_OK;
}

DS_API ds_status ds_detokenize(const ds_tokenizer *t, const int32_t *ids, size_t n, char *out, size_t cap, size_t *n_out) {
    size_t i, k = 0;
    if (n_out) *n_out = 0;
    if (!t || !n_out || (!ids && n) || (!out && cap)) return ds__fail(DS_ERR_INVALID_ARG, "detokenize: NULL argument");
    for (i = 0; i < n; i++) {
        const char *p;
        size_t len;
        if (ids[i] < 0 || ids[i] >= t->n_vocab) return ds__fail(DS_ERR_INVALID_ARG, "detokenize: id %d at %zu outside the vocabulary of %d", (int)ids[i], i, (int)t->n_vocab);
        p = t->bytes + t->boff[ids[i]];
        len = t->boff[ids[i] + 1] - t->boff[ids[i]];
        if (i == 0 && t->model == DS__TOK_SPM && t->add_space_prefix && len && p[0] == ' ') {
            p++;
            len--;
        }
        ds__put_bytes(out, cap, &k, p, len);
    }
    *n_out = k;
    if (k > cap) return ds__fail(DS_ERR_BOUNDS, "detokenize: %zu bytes do not fit in %zu", k, cap);
    return DS_OK;
}

/* bytes at the end of s[0..n) that start a UTF-8 sequence still waiting for its rest */
static size_t ds__utf8_incomplete_tail(const unsigned char *s, size_t n) {
    size_t back;
    for (back = 1; back <= 3 && back <= n; back++) {
        unsigned char b = s[n - back];
        int need;
        if ((b & 0xC0) == 0x80) continue;
        need = ds__utf8_seq_len(b);
        if (need > (int)back) {
            uint32_t cp;
            int k = ds__utf8_decode(s + n - back, back, &cp);
            /* a valid prefix of a longer sequence decodes as "cut short", never as bad bytes */
            return (k < 0 && (size_t)-k == back) ? back : 0;
        }
        return 0;
    }
    return 0;
}

DS_API ds_status ds_detok_stream_push(const ds_tokenizer *t, ds_detok_stream *s, int32_t id, char *out, size_t cap, size_t *n_out) {
    unsigned char tmp[4];
    const char *p;
    size_t len, total, hold, np;
    if (n_out) *n_out = 0;
    if (!t || !s || !n_out || (!out && cap)) return ds__fail(DS_ERR_INVALID_ARG, "detok_stream_push: NULL argument");
    if (id < 0 || id >= t->n_vocab) return ds__fail(DS_ERR_INVALID_ARG, "detok_stream_push: id %d outside the vocabulary of %d", (int)id, (int)t->n_vocab);
    if (s->n_pending < 0 || s->n_pending > 3) s->n_pending = 0;
    np = (size_t)s->n_pending;
    p = t->bytes + t->boff[id];
    len = t->boff[id + 1] - t->boff[id];
    total = np + len;
    /* only the last few bytes decide what to hold back */
    {
        size_t tail = DS__MIN(total, (size_t)4), i;
        for (i = 0; i < tail; i++) {
            size_t at = total - tail + i;
            tmp[i] = at < np ? s->pending[at] : (unsigned char)p[at - np];
        }
        hold = ds__utf8_incomplete_tail(tmp, tail);
    }
    *n_out = total - hold;
    if (total - hold > cap) return ds__fail(DS_ERR_BOUNDS, "detok_stream_push: %zu bytes do not fit in %zu", total - hold, cap);
    {
        size_t i, k = 0;
        unsigned char keep[4];
        for (i = 0; i < total; i++) {
            unsigned char b = i < np ? s->pending[i] : (unsigned char)p[i - np];
            if (i < total - hold) out[k++] = (char)b;
            else keep[i - (total - hold)] = b;
        }
        memcpy(s->pending, keep, hold);
        s->n_pending = (int)hold;
    }
    return DS_OK;
}

/* ---- building a tokenizer ---------------------------------------------------------------- */
/* What every loader (GGUF, tokenizer.json, the trainer) hands the builder. Merges are given as
   2 * n_merges strings: left, right. */
typedef struct ds__tok_spec {
    int model, pre;
    int32_t n_vocab;
    const ds__span *tokens;
    const int32_t *types;      /* NULL: all normal */
    const float *scores;       /* NULL: none */
    const ds__span *merges;
    int64_t n_merges;
    int32_t bos, eos, eot, eom, unk, pad;
    int add_bos, add_eos, add_space_prefix, ignore_merges, byte_fallback, fuse_unk;
    const char *what;          /* names the source in messages */
} ds__tok_spec;

DS_API void ds_tokenizer_free(ds_tokenizer *t) {
    if (!t) return;
    ds_free(t->text);
    ds_free(t->off);
    ds_free(t->bytes);
    ds_free(t->boff);
    ds_free(t->type);
    ds_free(t->score);
    ds_free(t->spm_rank);
    ds_free(t->vocab_slot);
    ds_free(t->merge_key);
    ds_free(t->merge_res);
    ds_free(t->merge_slot);
    ds_free(t->special);
    ds_free(t->eog);
    ds_free(t->ucls);
    ds_free(t->nfc);
    ds_free(t);
}

/* GPT-2's byte <-> printable code point map: printable Latin-1 bytes keep their code point,
   the other 68 take U+0100.. in byte order */
static void ds__byte_map(ds_tokenizer *t) {
    int b, n = 0;
    for (b = 0; b < 324; b++) t->char_byte[b] = -1;
    for (b = 0; b < 256; b++) {
        int keep = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        t->byte_char[b] = (uint16_t)(keep ? b : 256 + n++);
        t->char_byte[t->byte_char[b]] = (int16_t)b;
    }
}

static ds_status ds__tok_copy_vocab(ds_tokenizer *t, const ds__tok_spec *sp) {
    uint64_t total = 0;
    int32_t i;
    for (i = 0; i < sp->n_vocab; i++) total += sp->tokens[i].n;
    if (total >= UINT32_MAX) return ds__fail(DS_ERR_UNSUPPORTED, "%s: vocabulary strings exceed 4 GiB", sp->what);
    t->text = DS__CAST(char *, ds_alloc((size_t)total + 1));
    t->off = DS__CAST(uint32_t *, ds__calloc((size_t)sp->n_vocab + 1, sizeof(uint32_t)));
    t->type = DS__CAST(uint8_t *, ds__calloc((size_t)sp->n_vocab, 1));
    t->vocab_mask = ds__pow2_slots((uint64_t)sp->n_vocab) - 1;
    t->vocab_slot = DS__CAST(uint32_t *, ds__calloc((size_t)t->vocab_mask + 1, sizeof(uint32_t)));
    if (!t->text || !t->off || !t->type || !t->vocab_slot) return ds__fail(DS_ERR_NO_MEMORY, "%s: out of memory", sp->what);
    for (i = 0; i < sp->n_vocab; i++) {
        uint32_t h;
        if (sp->tokens[i].n) memcpy(t->text + t->off[i], sp->tokens[i].p, sp->tokens[i].n);
        t->off[i + 1] = t->off[i] + (uint32_t)sp->tokens[i].n;
        t->type[i] = (uint8_t)(sp->types ? sp->types[i] : DS__TT_NORMAL);
        if (t->type[i] == DS__TT_UNUSED && !sp->tokens[i].n) continue;
        /* a later duplicate wins, as a map built in id order would have it */
        h = (uint32_t)ds__hash_bytes(sp->tokens[i].p, sp->tokens[i].n) & t->vocab_mask;
        while (t->vocab_slot[h]) {
            size_t k;
            const char *p = ds__tok_str(t, (int32_t)(t->vocab_slot[h] - 1), &k);
            if (k == sp->tokens[i].n && memcmp(p, sp->tokens[i].p, k) == 0) break;
            h = (h + 1) & t->vocab_mask;
        }
        t->vocab_slot[h] = (uint32_t)i + 1;
    }
    return DS_OK;
}

static int ds__hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}
/* "<0xAB>" -> 0xAB, else -1 */
static int ds__byte_token(const char *p, size_t n) {
    if (n != 6 || memcmp(p, "<0x", 3) != 0 || p[5] != '>' || ds__hexval(p[3]) < 0 || ds__hexval(p[4]) < 0) return -1;
    return ds__hexval(p[3]) * 16 + ds__hexval(p[4]);
}

/* what each token decodes to: byte-level symbols mapped back to bytes (other characters kept
   as they are), or SentencePiece's "▁" as a space and <0xXX> as the byte */
static ds_status ds__tok_decode_table(ds_tokenizer *t, const char *what) {
    ds__buf b;
    int32_t i;
    memset(&b, 0, sizeof b);
    t->boff = DS__CAST(uint32_t *, ds__calloc((size_t)t->n_vocab + 1, sizeof(uint32_t)));
    if (!t->boff) return ds__fail(DS_ERR_NO_MEMORY, "%s: out of memory", what);
    for (i = 0; i < t->n_vocab; i++) {
        size_t n, j = 0;
        const char *p = ds__tok_str(t, i, &n);
        int byte = t->model == DS__TOK_SPM ? ds__byte_token(p, n) : -1;
        if (byte >= 0 && t->type[i] != DS__TT_CONTROL) {
            ds__buf_putc(&b, (char)byte);
        } else {
            while (j < n) {
                uint32_t cp;
                int k = ds__utf8_decode((const unsigned char *)p + j, n - j, &cp);
                size_t len = (size_t)(k < 0 ? -k : k);
                if (t->model == DS__TOK_BPE && k > 0 && cp < 324 && t->char_byte[cp] >= 0) ds__buf_putc(&b, (char)t->char_byte[cp]);
                else if (t->model == DS__TOK_SPM && k == 3 && cp == 0x2581) ds__buf_putc(&b, ' ');
                else ds__buf_put(&b, p + j, len);
                j += len;
            }
        }
        if (b.n >= UINT32_MAX) b.oom = 1;
        t->boff[i + 1] = (uint32_t)b.n;
    }
    if (b.oom) {
        ds__buf_free(&b);
        return ds__fail(DS_ERR_NO_MEMORY, "%s: out of memory", what);
    }
    t->bytes = b.p ? b.p : DS__CAST(char *, ds_alloc(1));
    return t->bytes ? DS_OK : ds__fail(DS_ERR_NO_MEMORY, "%s: out of memory", what);
}

static ds_status ds__tok_merges(ds_tokenizer *t, const ds__tok_spec *sp) {
    int64_t i;
    ds__buf cat;
    if (!sp->n_merges) return DS_OK;
    if (sp->n_merges >= INT32_MAX) return ds__fail(DS_ERR_UNSUPPORTED, "%s: %lld merges are too many", sp->what, (long long)sp->n_merges);
    memset(&cat, 0, sizeof cat);
    t->n_merges = sp->n_merges;
    t->merge_key = DS__CAST(uint64_t *, ds__calloc((size_t)sp->n_merges, sizeof(uint64_t)));
    t->merge_res = DS__CAST(int32_t *, ds__calloc((size_t)sp->n_merges, sizeof(int32_t)));
    t->merge_mask = ds__pow2_slots((uint64_t)sp->n_merges) - 1;
    t->merge_slot = DS__CAST(ds__merge_slot *, ds__calloc((size_t)t->merge_mask + 1, sizeof(ds__merge_slot)));
    if (!t->merge_key || !t->merge_res || !t->merge_slot) return ds__fail(DS_ERR_NO_MEMORY, "%s: out of memory", sp->what);
    for (i = 0; i <= (int64_t)t->merge_mask; i++) t->merge_slot[i].rank = -1;
    for (i = 0; i < sp->n_merges; i++) {
        const ds__span *a = &sp->merges[2 * i], *b = &sp->merges[2 * i + 1];
        int32_t ia = ds__vocab_find(t, a->p, a->n), ib = ds__vocab_find(t, b->p, b->n), ic;
        uint64_t key;
        uint32_t h;
        cat.n = 0;
        ds__buf_put(&cat, a->p, a->n);
        ds__buf_put(&cat, b->p, b->n);
        if (cat.oom) {
            ds__buf_free(&cat);
            return ds__fail(DS_ERR_NO_MEMORY, "%s: out of memory", sp->what);
        }
        ic = ds__vocab_find(t, cat.p, cat.n);
        if (ia < 0 || ib < 0 || ic < 0) {
            ds_status s = ds__fail(DS_ERR_FORMAT, "%s: merge %lld ('%.*s' '%.*s'): %s is not in the vocabulary", sp->what, (long long)i,
                                   (int)DS__MIN(a->n, 64), a->p, (int)DS__MIN(b->n, 64), b->p, ia < 0 ? "the left part" : ib < 0 ? "the right part" : "the merged token");
            ds__buf_free(&cat);
            return s;
        }
        key = ((uint64_t)(uint32_t)ia << 32) | (uint32_t)ib;
        t->merge_key[i] = key;
        t->merge_res[i] = ic;
        /* a repeated pair takes its last rank, as a map filled in list order would */
        h = (uint32_t)ds__hash_u64(key) & t->merge_mask;
        while (t->merge_slot[h].rank >= 0 && t->merge_slot[h].key != key) h = (h + 1) & t->merge_mask;
        t->merge_slot[h].key = key;
        t->merge_slot[h].rank = (int32_t)i;
        t->merge_slot[h].res = ic;
    }
    ds__buf_free(&cat);
    return DS_OK;
}

/* added tokens matched in text are ordered by first byte, then longest first */
static int ds__special_before(const ds_tokenizer *t, int32_t a, int32_t b) {
    size_t na, nb;
    const unsigned char *pa = (const unsigned char *)ds__tok_str(t, a, &na), *pb = (const unsigned char *)ds__tok_str(t, b, &nb);
    if (pa[0] != pb[0]) return pa[0] < pb[0];
    if (na != nb) return na > nb;
    return a < b;
}

/* stable bottom-up merge sort of v[0..n) by ds__special_before, tmp has room for n */
static void ds__special_sort(const ds_tokenizer *t, int32_t *v, int32_t *tmp, int32_t n) {
    int32_t w, i;
    for (w = 1; w < n; w *= 2) {
        for (i = 0; i < n; i += 2 * w) {
            int32_t a = i, am = DS__MIN(i + w, n), b = am, bm = DS__MIN(i + 2 * w, n), k = i;
            while (a < am || b < bm) tmp[k++] = (b >= bm || (a < am && !ds__special_before(t, v[b], v[a]))) ? v[a++] : v[b++];
        }
        memcpy(v, tmp, (size_t)n * sizeof *v);
    }
}

typedef struct ds__score_id {
    float score;
    int32_t id;
} ds__score_id;
static int ds__score_cmp(const void *x, const void *y) {
    const ds__score_id *a = (const ds__score_id *)x, *b = (const ds__score_id *)y;
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

/* SentencePiece merges the pair whose joined token scores highest: rank = dense rank of the
   score, best first (equal scores share a rank, so the leftmost pair wins among them) */
static ds_status ds__tok_spm_ranks(ds_tokenizer *t, const char *what) {
    ds__score_id *v = DS__CAST(ds__score_id *, ds__calloc((size_t)t->n_vocab, sizeof *v));
    int32_t i;
    uint32_t rank = 0;
    t->spm_rank = DS__CAST(uint32_t *, ds__calloc((size_t)t->n_vocab, sizeof(uint32_t)));
    if (!v || !t->spm_rank) {
        ds_free(v);
        return ds__fail(DS_ERR_NO_MEMORY, "%s: out of memory", what);
    }
    for (i = 0; i < t->n_vocab; i++) {
        v[i].score = t->score ? t->score[i] : 0.0f;
        v[i].id = i;
    }
    qsort(v, (size_t)t->n_vocab, sizeof *v, ds__score_cmp);
    for (i = 0; i < t->n_vocab; i++) {
        if (i > 0 && v[i].score != v[i - 1].score) rank++;
        t->spm_rank[v[i].id] = rank;
    }
    ds_free(v);
    return DS_OK;
}

static ds_status ds__tok_specials(ds_tokenizer *t, const char *what) {
    static const char *const eog_names[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|eom_id|>",
                                            "<EOT>", "<|end_of_text|>", "</s>", "<\xEF\xBD\x9C" "end\xE2\x96\x81" "of\xE2\x96\x81" "sentence\xEF\xBD\x9C>"};
    int32_t i, *tmp;
    size_t e;
    t->special = DS__CAST(int32_t *, ds__calloc((size_t)t->n_vocab, sizeof(int32_t)));
    t->eog = DS__CAST(int32_t *, ds__calloc(sizeof eog_names / sizeof eog_names[0] + 3, sizeof(int32_t)));
    tmp = DS__CAST(int32_t *, ds__calloc((size_t)t->n_vocab, sizeof(int32_t)));
    if (!t->special || !t->eog || !tmp) {
        ds_free(tmp);
        return ds__fail(DS_ERR_NO_MEMORY, "%s: out of memory", what);
    }
    for (i = 0; i < t->n_vocab; i++)
        if ((t->type[i] == DS__TT_CONTROL || t->type[i] == DS__TT_USER) && t->off[i + 1] > t->off[i]) t->special[t->n_special++] = i;
    ds__special_sort(t, t->special, tmp, t->n_special);
    ds_free(tmp);
    for (i = 0; i < t->n_special; i++) t->special_start[(unsigned char)t->text[t->off[t->special[i]]] + 1] = (uint32_t)i + 1;
    for (i = 1; i <= 256; i++) t->special_start[i] = DS__MAX(t->special_start[i], t->special_start[i - 1]);
    if (t->eos >= 0) t->eog[t->n_eog++] = t->eos;
    if (t->eot >= 0) t->eog[t->n_eog++] = t->eot;
    for (e = 0; e < sizeof eog_names / sizeof eog_names[0]; e++) {
        int32_t id = ds__vocab_find(t, eog_names[e], strlen(eog_names[e]));
        if (id >= 0 && (t->type[id] == DS__TT_CONTROL || t->type[id] == DS__TT_USER) && !ds_tokenizer_is_eog(t, id)) t->eog[t->n_eog++] = id;
    }
    return DS_OK;
}

static ds_status ds__tok_unicode(ds_tokenizer *t, const char *what) {
    size_t r, n = sizeof ds__uc_runs / sizeof ds__uc_runs[0];
    t->ucls = DS__CAST(uint8_t *, ds_alloc(0x10000));
    if (!t->ucls) return ds__fail(DS_ERR_NO_MEMORY, "%s: out of memory", what);
    for (r = 0; r < n && (ds__uc_runs[r] >> 8) < 0x10000; r++) {
        uint32_t a = ds__uc_runs[r] >> 8, b = r + 1 < n ? DS__MIN(ds__uc_runs[r + 1] >> 8, 0x10000u) : 0x10000u;
        memset(t->ucls + a, (int)(ds__uc_runs[r] & 0xFF), b - a);
    }
    return DS_OK;
}

static ds_status ds__tok_build(const ds__tok_spec *sp, ds_tokenizer **out) {
    ds_tokenizer *t;
    ds_status s;
    int b;
    *out = NULL;
    if (sp->n_vocab <= 0) return ds__fail(DS_ERR_FORMAT, "%s: the vocabulary is empty", sp->what);
    t = DS__CAST(ds_tokenizer *, ds__calloc(1, sizeof *t));
    if (!t) return ds__fail(DS_ERR_NO_MEMORY, "%s: out of memory", sp->what);
    t->model = sp->model;
    t->pre = sp->pre;
    t->n_vocab = sp->n_vocab;
    t->add_bos = sp->add_bos;
    t->add_eos = sp->add_eos;
    t->add_space_prefix = sp->add_space_prefix;
    t->ignore_merges = sp->ignore_merges;
    t->byte_fallback = sp->byte_fallback;
    t->fuse_unk = sp->fuse_unk;
#define DS__TOK_ID(x) ((x) >= 0 && (x) < sp->n_vocab ? (x) : -1)
    t->bos = DS__TOK_ID(sp->bos);
    t->eos = DS__TOK_ID(sp->eos);
    t->eot = DS__TOK_ID(sp->eot);
    t->unk = DS__TOK_ID(sp->unk);
    t->bpe_unk = -1;
    t->pad = DS__TOK_ID(sp->pad);
#undef DS__TOK_ID
    ds__byte_map(t);
    if ((s = ds__tok_copy_vocab(t, sp)) != DS_OK) goto fail;
    for (b = 0; b < 256; b++) {
        char tmp[8];
        int k = t->model == DS__TOK_BPE ? ds__utf8_encode(t->byte_char[b], tmp) : snprintf(tmp, sizeof tmp, "<0x%02X>", b);
        t->byte_tok[b] = ds__vocab_find(t, tmp, (size_t)k);
    }
    if (sp->scores) {
        t->score = DS__CAST(float *, ds__calloc((size_t)sp->n_vocab, sizeof(float)));
        if (!t->score) {
            s = ds__fail(DS_ERR_NO_MEMORY, "%s: out of memory", sp->what);
            goto fail;
        }
        memcpy(t->score, sp->scores, (size_t)sp->n_vocab * sizeof(float));
    }
    if (t->model == DS__TOK_SPM && !sp->n_merges && (s = ds__tok_spm_ranks(t, sp->what)) != DS_OK) goto fail;
    if ((s = ds__tok_merges(t, sp)) != DS_OK) goto fail;
    if ((s = ds__tok_decode_table(t, sp->what)) != DS_OK) goto fail;
    if ((s = ds__tok_specials(t, sp->what)) != DS_OK) goto fail;
    if ((s = ds__tok_unicode(t, sp->what)) != DS_OK) goto fail;
    *out = t;
    return DS_OK;
fail:
    ds_tokenizer_free(t);
    return s;
}

/* tokenizer.json carries no EOS id: take the first end-of-generation marker it has */
static void ds__tok_guess_eos(ds_tokenizer *t) {
    if (t->eos < 0 && t->n_eog > 0) t->eos = t->eog[0];
}

DS_API int ds_tokenizer_n_vocab(const ds_tokenizer *t) { return t ? t->n_vocab : 0; }
DS_API int32_t ds_tokenizer_bos(const ds_tokenizer *t) { return t ? t->bos : -1; }
DS_API int32_t ds_tokenizer_eos(const ds_tokenizer *t) { return t ? t->eos : -1; }
DS_API int ds_tokenizer_adds_bos(const ds_tokenizer *t) { return t ? t->add_bos : 0; }
DS_API int ds_tokenizer_is_eog(const ds_tokenizer *t, int32_t id) {
    int i;
    if (!t) return 0;
    for (i = 0; i < t->n_eog; i++)
        if (t->eog[i] == id) return 1;
    return 0;
}
DS_API int32_t ds_tokenizer_find(const ds_tokenizer *t, const char *piece, size_t len) {
    if (!t || (!piece && len)) return -1;
    return ds__vocab_find(t, piece ? piece : "", len);
}
DS_API const char *ds_tokenizer_token(const ds_tokenizer *t, int32_t id, size_t *len) {
    size_t n;
    const char *p;
    if (!t || id < 0 || id >= t->n_vocab) return NULL;
    p = ds__tok_str(t, id, &n);
    if (len) *len = n;
    return p;
}
DS_API const char *ds_tokenizer_pre_name(const ds_tokenizer *t) { return t ? ds__pre_names[t->pre] : "?"; }

/* ---- tokenizer.json ---------------------------------------------------------------------- */
#define DS__TJ "tokenizer.json"

/* a string member as a freshly allocated NUL-terminated copy; NULL when absent or not a string */
static char *ds__json_dup(const ds__json *d, uint32_t node) {
    char *s;
    size_t n;
    if (!node || d->nodes[node].type != DS__JSON_STRING) return NULL;
    s = DS__CAST(char *, ds_alloc((size_t)d->nodes[node].n + 1));
    if (!s) return NULL;
    n = ds__json_str(d, node, s);
    s[n] = 0;
    return s;
}

static int ds__json_flag(const ds__json *d, uint32_t obj, const char *key, int dflt) {
    uint32_t v = ds__json_get(d, obj, key);
    if (!v) return dflt;
    if (d->nodes[v].type == DS__JSON_TRUE) return 1;
    if (d->nodes[v].type == DS__JSON_FALSE) return 0;
    return dflt;
}

static int ds__json_type_is(const ds__json *d, uint32_t obj, const char *type) {
    uint32_t v = ds__json_get(d, obj, "type");
    return v && ds__json_str_eq(d, v, type);
}

/* the split patterns we implement, as tokenizer.json spells them (CR and LF written \r \n) */
static const char *const ds__pat_llama3 = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char *const ds__pat_qwen2 = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char *const ds__pat_dsv3_digits = "\\p{N}{1,3}";
static const char *const ds__pat_dsv3_cjk = "[\xE4\xB8\x80-\xE9\xBE\xA5\xE3\x81\x80-\xE3\x82\x9F\xE3\x82\xA0-\xE3\x83\xBF]+";
static const char *const ds__pat_dsv3 = "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/* a Split's regex with literal CR/LF rewritten as \r \n, compared with want */
static int ds__split_is(const ds__json *d, uint32_t split, const char *want) {
    uint32_t pat = ds__json_get(d, ds__json_get(d, split, "pattern"), "Regex");
    char *s = ds__json_dup(d, pat);
    ds__buf b;
    size_t i;
    int eq;
    if (!s) return 0;
    memset(&b, 0, sizeof b);
    for (i = 0; s[i]; i++) {
        if (s[i] == '\r') ds__buf_puts(&b, "\\r");
        else if (s[i] == '\n') ds__buf_puts(&b, "\\n");
        else ds__buf_putc(&b, s[i]);
    }
    eq = !b.oom && b.n == strlen(want) && memcmp(b.p, want, b.n) == 0 && ds__json_flag(d, split, "invert", 0) == 0 &&
         ds__json_str_eq(d, ds__json_get(d, split, "behavior"), "Isolated");
    ds_free(s);
    ds__buf_free(&b);
    return eq;
}

/* names one pre-tokenizer step: "bl-regex", "bl", "digits1", "split-llama3", ... or NULL */
static const char *ds__pre_step(const ds__json *d, uint32_t p) {
    if (ds__json_type_is(d, p, "ByteLevel")) {
        if (ds__json_flag(d, p, "add_prefix_space", 1)) return NULL;
        return ds__json_flag(d, p, "use_regex", 1) ? "bl-regex" : "bl";
    }
    if (ds__json_type_is(d, p, "Digits")) return ds__json_flag(d, p, "individual_digits", 0) ? "digits1" : NULL;
    /* SentencePiece's "▁" for spaces (and in front), split into words before each "▁" or not */
    if (ds__json_type_is(d, p, "Metaspace") && ds__json_str_eq(d, ds__json_get(d, p, "replacement"), "\xE2\x96\x81"))
        return ds__json_flag(d, p, "split", 1) ? "metaspace-split" : "metaspace";
    if (ds__json_type_is(d, p, "Split")) {
        if (ds__split_is(d, p, ds__pat_llama3)) return "split-llama3";
        if (ds__split_is(d, p, ds__pat_qwen2)) return "split-qwen2";
        if (ds__split_is(d, p, ds__pat_dsv3_digits)) return "split-n3";
        if (ds__split_is(d, p, ds__pat_dsv3_cjk)) return "split-cjk";
        if (ds__split_is(d, p, ds__pat_dsv3)) return "split-dsv3";
    }
    return NULL;
}

static ds_status ds__json_pre(const ds__json *d, uint32_t root, int *pre) {
    static const struct {
        const char *steps;
        int pre;
    } known[] = {{"bl-regex,", DS__PRE_GPT2}, {"digits1,bl-regex,", DS__PRE_SMOLLM}, {"split-llama3,bl,", DS__PRE_LLAMA3},
                 {"split-qwen2,bl,", DS__PRE_QWEN2}, {"split-n3,split-cjk,split-dsv3,bl,", DS__PRE_DSV3}, {"metaspace,", DS__PRE_NONE}, {"metaspace-split,", DS__PRE_NONE}, {"", DS__PRE_NONE}};
    uint32_t p = ds__json_get(d, root, "pre_tokenizer"), step;
    char sig[160] = "";
    size_t i;
    if (p && d->nodes[p].type == DS__JSON_OBJECT && ds__json_type_is(d, p, "Sequence")) {
        uint32_t list = ds__json_get(d, p, "pretokenizers");
        if (!list || d->nodes[list].type != DS__JSON_ARRAY) return ds__fail(DS_ERR_FORMAT, DS__TJ ": pre_tokenizer Sequence without a 'pretokenizers' array");
        step = d->nodes[list].first;
    } else if (p && d->nodes[p].type == DS__JSON_OBJECT) {
        step = p;
    } else {
        step = 0;
    }
    for (; step; step = (p && step == p) ? 0 : d->nodes[step].next) {
        const char *name = ds__pre_step(d, step);
        char *type = ds__json_dup(d, ds__json_get(d, step, "type"));
        if (!name || strlen(sig) + strlen(name) + 2 > sizeof sig) {
            ds_status s = ds__fail(DS_ERR_UNSUPPORTED, DS__TJ ": pre_tokenizer step '%s' (with these settings) is not supported; supported: the GPT-2, SmolLM, Llama-3, Qwen2 and DeepSeek-V3 pre-tokenizers and Metaspace", type ? type : "?");
            ds_free(type);
            return s;
        }
        ds_free(type);
        strcat(sig, name);
        strcat(sig, ",");
    }
    for (i = 0; i < sizeof known / sizeof known[0]; i++)
        if (!strcmp(sig, known[i].steps)) {
            *pre = known[i].pre;
            return DS_OK;
        }
    return ds__fail(DS_ERR_UNSUPPORTED, DS__TJ ": pre_tokenizer sequence '%s' is not one we support", sig);
}

/* accepts no normalizer, NFC, an empty Sequence, or SentencePiece's Prepend("▁") +
   Replace(" ", "▁") */
static ds_status ds__json_normalizer(const ds__json *d, uint32_t root, int *spm_prefix, int *nfc) {
    uint32_t n = ds__json_get(d, root, "normalizer"), it;
    *spm_prefix = 0;
    *nfc = 0;
    if (!n || d->nodes[n].type == DS__JSON_NULL) return DS_OK;
    if (ds__json_type_is(d, n, "NFC")) {
        *nfc = 1;
        return DS_OK;
    }
    if (ds__json_type_is(d, n, "Sequence")) {
        uint32_t list = ds__json_get(d, n, "normalizers");
        for (it = list ? d->nodes[list].first : 0; it; it = d->nodes[it].next) {
            if (ds__json_type_is(d, it, "NFC") && it == d->nodes[list].first && !d->nodes[it].next) *nfc = 1;
            else if (ds__json_type_is(d, it, "Prepend") && ds__json_str_eq(d, ds__json_get(d, it, "prepend"), "\xE2\x96\x81")) *spm_prefix = 1;
            else if (ds__json_type_is(d, it, "Replace") && ds__json_str_eq(d, ds__json_get(d, ds__json_get(d, it, "pattern"), "String"), " ") &&
                     ds__json_str_eq(d, ds__json_get(d, it, "content"), "\xE2\x96\x81")) continue;
            else break;
        }
        if (!it) return DS_OK;
        n = it;
    }
    {
        char *type = ds__json_dup(d, ds__json_get(d, n, "type"));
        ds_status s = ds__fail(DS_ERR_UNSUPPORTED, DS__TJ ": normalizer '%s' is not supported", type ? type : "?");
        ds_free(type);
        return s;
    }
}

/* Vocabulary size: one past the largest id of model.vocab and added_tokens. */
static ds_status ds__json_vocab_size(const ds__json *d, uint32_t vocab, uint32_t added, int32_t *n) {
    uint32_t k;
    double max = -1;
    for (k = d->nodes[vocab].first; k; k = d->nodes[d->nodes[k].next].next) {
        const ds__json_node *v = &d->nodes[d->nodes[k].next];
        if (v->type != DS__JSON_NUMBER || v->num < 0 || v->num != floor(v->num) || v->num >= (double)INT32_MAX) return ds__fail(DS_ERR_FORMAT, DS__TJ ": model.vocab: id of token '%.*s' is not a non-negative integer", (int)DS__MIN(d->nodes[k].n, 64), d->src + d->nodes[k].first);
        max = DS__MAX(max, v->num);
    }
    for (k = added ? d->nodes[added].first : 0; k; k = d->nodes[k].next) {
        uint32_t id = ds__json_get(d, k, "id");
        if (!id || d->nodes[id].type != DS__JSON_NUMBER || d->nodes[id].num < 0 || d->nodes[id].num >= (double)INT32_MAX || d->nodes[id].num != floor(d->nodes[id].num)) return ds__fail(DS_ERR_FORMAT, DS__TJ ": added_tokens: an entry lacks a valid 'id'");
        max = DS__MAX(max, d->nodes[id].num);
    }
    if (max + 1 > (double)(INT32_MAX / 2)) return ds__fail(DS_ERR_UNSUPPORTED, DS__TJ ": vocabulary of %.0f tokens is too large", max + 1);
    /* ids are dense in every real vocabulary: a few huge ids would only cost memory and time */
    if (max + 1 > 2.0 * ((double)d->nodes[vocab].n + (added ? (double)d->nodes[added].n : 0.0)) + 1024.0)
        return ds__fail(DS_ERR_UNSUPPORTED, DS__TJ ": token ids up to %.0f for %u tokens: sparse ids are not supported", max, (unsigned)(d->nodes[vocab].n + (added ? d->nodes[added].n : 0)));
    *n = (int32_t)(max + 1);
    return DS_OK;
}

typedef struct ds__json_load {
    ds__json d;
    ds__tok_spec sp;
    ds__span *tokens, *merges;
    int32_t *types;
    char *strs;        /* unescaped strings, one arena */
    size_t strs_n;
    int spm_split, spm_metaspace;
} ds__json_load;

/* unescaped copy of string node i inside the arena */
static ds__span ds__json_span(ds__json_load *L, uint32_t i) {
    ds__span s;
    s.p = L->strs + L->strs_n;
    s.n = ds__json_str(&L->d, i, L->strs + L->strs_n);
    L->strs_n += s.n;
    return s;
}

static ds_status ds__json_model_vocab(ds__json_load *L, uint32_t vocab) {
    const ds__json *d = &L->d;
    uint32_t k;
    for (k = d->nodes[vocab].first; k; k = d->nodes[d->nodes[k].next].next) {
        int32_t id = (int32_t)d->nodes[d->nodes[k].next].num;
        L->tokens[id] = ds__json_span(L, k);
        L->types[id] = DS__TT_NORMAL;
    }
    return DS_OK;
}

static ds_status ds__json_added(ds__json_load *L, uint32_t added) {
    const ds__json *d = &L->d;
    uint32_t k;
    for (k = added ? d->nodes[added].first : 0; k; k = d->nodes[k].next) {
        int32_t id = (int32_t)d->nodes[ds__json_get(d, k, "id")].num;
        uint32_t content = ds__json_get(d, k, "content");
        if (!content || d->nodes[content].type != DS__JSON_STRING) return ds__fail(DS_ERR_FORMAT, DS__TJ ": added token %d lacks a string 'content'", (int)id);
        if (ds__json_flag(d, k, "lstrip", 0) || ds__json_flag(d, k, "rstrip", 0) || ds__json_flag(d, k, "single_word", 0))
            return ds__fail(DS_ERR_UNSUPPORTED, DS__TJ ": added token %d: lstrip, rstrip and single_word are not supported", (int)id);
        L->tokens[id] = ds__json_span(L, content);
        L->types[id] = ds__json_flag(d, k, "special", 0) ? DS__TT_CONTROL : DS__TT_USER;
    }
    return DS_OK;
}

/* merges: "left right" strings or [left, right] pairs */
static ds_status ds__json_merges(ds__json_load *L, uint32_t merges) {
    const ds__json *d = &L->d;
    uint32_t k;
    int64_t i = 0;
    for (k = merges ? d->nodes[merges].first : 0; k; k = d->nodes[k].next, i++) {
        const ds__json_node *m = &d->nodes[k];
        if (m->type == DS__JSON_STRING) {
            ds__span s = ds__json_span(L, k);
            const char *sp = s.n > 1 ? DS__CAST(const char *, memchr(s.p + 1, ' ', s.n - 1)) : NULL;
            if (!sp || memchr(sp + 1, ' ', s.n - (size_t)(sp + 1 - s.p))) return ds__fail(DS_ERR_FORMAT, DS__TJ ": model.merges[%lld] is not two tokens separated by one space", (long long)i);
            L->merges[2 * i].p = s.p;
            L->merges[2 * i].n = (size_t)(sp - s.p);
            L->merges[2 * i + 1].p = sp + 1;
            L->merges[2 * i + 1].n = s.n - (size_t)(sp + 1 - s.p);
        } else if (m->type == DS__JSON_ARRAY && m->n == 2 && d->nodes[m->first].type == DS__JSON_STRING && d->nodes[d->nodes[m->first].next].type == DS__JSON_STRING) {
            L->merges[2 * i] = ds__json_span(L, m->first);
            L->merges[2 * i + 1] = ds__json_span(L, d->nodes[m->first].next);
        } else {
            return ds__fail(DS_ERR_FORMAT, DS__TJ ": model.merges[%lld] is neither a string nor a pair of strings", (long long)i);
        }
    }
    return DS_OK;
}

/* BOS from a TemplateProcessing post-processor that starts with a special token */
static void ds__json_post(const ds__json_load *L, uint32_t root, const ds_tokenizer *t, int32_t *bos, int *add_bos) {
    const ds__json *d = &L->d;
    uint32_t post = ds__json_get(d, root, "post_processor"), single, first, name;
    char *s;
    if (!post) return;
    if (ds__json_type_is(d, post, "Sequence")) {
        uint32_t it, list = ds__json_get(d, post, "processors");
        for (it = list ? d->nodes[list].first : 0; it; it = d->nodes[it].next)
            if (ds__json_type_is(d, it, "TemplateProcessing")) post = it;
    }
    if (!ds__json_type_is(d, post, "TemplateProcessing")) return;
    single = ds__json_get(d, post, "single");
    first = single && d->nodes[single].type == DS__JSON_ARRAY ? d->nodes[single].first : 0;
    name = ds__json_get(d, ds__json_get(d, first, "SpecialToken"), "id");
    if (!(s = ds__json_dup(d, name))) return;
    *bos = ds__vocab_find(t, s, strlen(s));
    *add_bos = *bos >= 0;
    ds_free(s);
}

static ds_status ds__json_load_model(ds__json_load *L, ds_tokenizer **out) {
    ds__json *d = &L->d;
    uint32_t root = 0, model, vocab, merges, added, unk;
    int spm_prefix = 0, nfc = 0;
    int32_t i, n_vocab = 0;
    ds_status s;
    if (d->nodes[root].type != DS__JSON_OBJECT) return ds__fail(DS_ERR_FORMAT, DS__TJ ": the document is not an object");
    model = ds__json_get(d, root, "model");
    if (!model || d->nodes[model].type != DS__JSON_OBJECT) return ds__fail(DS_ERR_FORMAT, DS__TJ ": no 'model' object");
    if (ds__json_get(d, model, "type") && !ds__json_type_is(d, model, "BPE")) {
        char *type = ds__json_dup(d, ds__json_get(d, model, "type"));
        s = ds__fail(DS_ERR_UNSUPPORTED, DS__TJ ": model type '%s' is not supported (only BPE)", type ? type : "?");
        ds_free(type);
        return s;
    }
    vocab = ds__json_get(d, model, "vocab");
    merges = ds__json_get(d, model, "merges");
    added = ds__json_get(d, root, "added_tokens");
    if (!vocab || d->nodes[vocab].type != DS__JSON_OBJECT) return ds__fail(DS_ERR_FORMAT, DS__TJ ": model.vocab is missing or not an object");
    if (merges && d->nodes[merges].type != DS__JSON_ARRAY) return ds__fail(DS_ERR_FORMAT, DS__TJ ": model.merges is not an array");
    if (added && d->nodes[added].type != DS__JSON_ARRAY) added = 0;
    {
        uint32_t cs = ds__json_get(d, model, "continuing_subword_prefix"), ew = ds__json_get(d, model, "end_of_word_suffix"), dr = ds__json_get(d, model, "dropout");
        if ((cs && d->nodes[cs].type == DS__JSON_STRING && d->nodes[cs].n) || (ew && d->nodes[ew].type == DS__JSON_STRING && d->nodes[ew].n) || (dr && d->nodes[dr].type == DS__JSON_NUMBER))
            return ds__fail(DS_ERR_UNSUPPORTED, DS__TJ ": BPE continuing_subword_prefix, end_of_word_suffix and dropout are not supported");
    }
    if ((s = ds__json_vocab_size(d, vocab, added, &n_vocab)) != DS_OK) return s;
    if ((s = ds__json_pre(d, root, &L->sp.pre)) != DS_OK) return s;
    if ((s = ds__json_normalizer(d, root, &spm_prefix, &nfc)) != DS_OK) return s;
    L->sp.model = L->sp.pre == DS__PRE_NONE ? DS__TOK_SPM : DS__TOK_BPE;
    L->sp.add_space_prefix = spm_prefix || L->sp.pre == DS__PRE_NONE;
    {
        uint32_t p = ds__json_get(d, root, "pre_tokenizer"), it, list = ds__json_get(d, p, "pretokenizers");
        for (it = list ? d->nodes[list].first : p; it; it = list ? d->nodes[it].next : 0) {
            if (!ds__json_type_is(d, it, "Metaspace")) continue;
            L->spm_split = ds__json_flag(d, it, "split", 1);
            L->spm_metaspace = 1;
            if (ds__json_str_eq(d, ds__json_get(d, it, "prepend_scheme"), "never") || !ds__json_flag(d, it, "add_prefix_space", 1)) L->sp.add_space_prefix = spm_prefix;
        }
    }
    L->sp.n_vocab = n_vocab;
    L->sp.n_merges = merges ? d->nodes[merges].n : 0;
    L->tokens = DS__CAST(ds__span *, ds__calloc((size_t)n_vocab, sizeof(ds__span)));
    L->types = DS__CAST(int32_t *, ds__calloc((size_t)n_vocab, sizeof(int32_t)));
    L->merges = DS__CAST(ds__span *, ds__calloc((size_t)L->sp.n_merges * 2 + 1, sizeof(ds__span)));
    L->strs = DS__CAST(char *, ds_alloc(d->len + 1));
    if (!L->tokens || !L->types || !L->merges || !L->strs) return ds__fail(DS_ERR_NO_MEMORY, DS__TJ ": out of memory");
    for (i = 0; i < n_vocab; i++) L->types[i] = DS__TT_UNUSED;
    if ((s = ds__json_model_vocab(L, vocab)) != DS_OK || (s = ds__json_added(L, added)) != DS_OK || (s = ds__json_merges(L, merges)) != DS_OK) return s;
    L->sp.tokens = L->tokens;
    L->sp.types = L->types;
    L->sp.merges = L->merges;
    L->sp.ignore_merges = ds__json_flag(d, model, "ignore_merges", 0);
    L->sp.byte_fallback = ds__json_flag(d, model, "byte_fallback", 0);
    L->sp.fuse_unk = ds__json_flag(d, model, "fuse_unk", 0);
    L->sp.bos = L->sp.eos = L->sp.eot = L->sp.eom = L->sp.unk = L->sp.pad = -1;
    L->sp.what = DS__TJ;
    if ((s = ds__tok_build(&L->sp, out)) != DS_OK) return s;
    unk = ds__json_get(d, model, "unk_token");
    if (unk && d->nodes[unk].type == DS__JSON_STRING) {
        char *u = ds__json_dup(d, unk);
        if (u) (*out)->unk = (*out)->bpe_unk = ds__vocab_find(*out, u, strlen(u));
        ds_free(u);
    }
    if (nfc && !((*out)->nfc = ds__nfc_pairs(&(*out)->n_nfc))) return ds__fail(DS_ERR_NO_MEMORY, DS__TJ ": out of memory");
    (*out)->spm_split = L->spm_split;
    (*out)->spm_metaspace = L->spm_metaspace;
    ds__json_post(L, root, *out, &(*out)->bos, &(*out)->add_bos);
    ds__tok_guess_eos(*out);
    return DS_OK;
}

DS_API ds_status ds_tokenizer_from_json(const char *json, size_t len, ds_tokenizer **out) {
    ds__json_load L;
    ds_status s;
    if (!out || (!json && len)) return ds__fail(DS_ERR_INVALID_ARG, DS__TJ ": NULL argument");
    *out = NULL;
    memset(&L, 0, sizeof L);
    if ((s = ds__json_parse(json ? json : "", len, DS__TJ, &L.d)) != DS_OK) return s;
    s = ds__json_load_model(&L, out);
    ds__json_free(&L.d);
    ds_free(L.tokens);
    ds_free(L.merges);
    ds_free(L.types);
    ds_free(L.strs);
    return s;
}

DS_API ds_status ds_tokenizer_load(const char *path, ds_tokenizer **out) {
    ds_mapped_file f;
    ds_status s;
    if (!path || !out) return ds__fail(DS_ERR_INVALID_ARG, "tokenizer_load: NULL argument");
    *out = NULL;
    if ((s = ds_map_file(path, &f)) != DS_OK) return s;
    if (f.size >= 4 && memcmp(f.data, "GGUF", 4) == 0) {
        ds_gguf *g;
        ds_unmap_file(&f);
        if ((s = ds_gguf_open(path, &g)) != DS_OK) return s;
        s = ds_tokenizer_from_gguf(g, out);
        ds_gguf_free(g);
        return s;
    }
    {
        size_t i = 0;
        const char *d = DS__CAST(const char *, f.data);
        while (i < f.size && (d[i] == ' ' || d[i] == '\t' || d[i] == '\r' || d[i] == '\n')) i++;
        if (i == f.size || d[i] != '{') {
            ds_unmap_file(&f);
            return ds__fail(DS_ERR_FORMAT, "tokenizer_load: %s is neither a GGUF file (no 'GGUF' magic) nor a tokenizer.json (no JSON object)", path);
        }
    }
    s = ds_tokenizer_from_json((const char *)f.data, f.size, out);
    ds_unmap_file(&f);
    return s;
}

/* ---- GGUF -------------------------------------------------------------------------------- */
#define DS__TG "gguf tokenizer"

static int32_t ds__gguf_id(const ds_gguf *g, const char *key) {
    uint32_t v;
    return ds_gguf_get_u32(g, key, &v) == DS_OK && v < (uint32_t)INT32_MAX ? (int32_t)v : -1;
}
static int ds__gguf_flag(const ds_gguf *g, const char *key, int dflt) {
    int v;
    return ds_gguf_get_bool(g, key, &v) == DS_OK ? v : dflt;
}

static ds_status ds__gguf_pre(const ds_gguf *g, int model, int *pre) {
    static const struct {
        const char *name;
        int pre;
    } names[] = {{"gpt2", DS__PRE_GPT2}, {"gpt-2", DS__PRE_GPT2}, {"llama3", DS__PRE_LLAMA3}, {"llama-bpe", DS__PRE_LLAMA3},
                 {"smaug-bpe", DS__PRE_LLAMA3}, {"qwen2", DS__PRE_QWEN2}, {"smollm", DS__PRE_SMOLLM}, {"deepseek-v3", DS__PRE_DSV3}};
    ds_str s;
    size_t i;
    if (model == DS__TOK_SPM) {
        *pre = DS__PRE_NONE;
        return DS_OK;
    }
    if (ds_gguf_get_str(g, "tokenizer.ggml.pre", &s) != DS_OK) {
        *pre = DS__PRE_GPT2;
        return DS_OK;
    }
    for (i = 0; i < sizeof names / sizeof names[0]; i++)
        if (s.len == strlen(names[i].name) && memcmp(s.ptr, names[i].name, s.len) == 0) {
            *pre = names[i].pre;
            return DS_OK;
        }
    return ds__fail(DS_ERR_UNSUPPORTED, DS__TG ": tokenizer.ggml.pre '%.*s' is not supported (gpt2, llama-bpe, qwen2, smollm, deepseek-v3)", (int)DS__MIN(s.len, 64), s.ptr);
}

/* a numeric array of n elements of the given type, copied out (unaligned in the file) */
static ds_status ds__gguf_arr_copy(const ds_gguf *g, const char *key, ds_gguf_type want, uint64_t n, void *out, size_t elem) {
    ds_gguf_type et = DS_GGUF_U8;
    uint64_t k = 0;
    const void *data = NULL;
    ds_status s = ds_gguf_get_arr(g, key, &et, &k, &data);
    if (s != DS_OK) return s;
    if (et != want || k != n) return ds__fail(DS_ERR_FORMAT, DS__TG ": %s has %llu elements of type %s, want %llu of %s", key, (unsigned long long)k, ds_gguf_type_name(et), (unsigned long long)n, ds_gguf_type_name(want));
    memcpy(out, data, (size_t)n * elem);
    return DS_OK;
}

typedef struct ds__gguf_load {
    ds__tok_spec sp;
    ds_str *tokens, *merge_strs;
    ds__span *spans, *merges;
    int32_t *types;
    float *scores;
} ds__gguf_load;

static ds_status ds__gguf_load_spec(const ds_gguf *g, ds__gguf_load *L) {
    ds_str model;
    ds_gguf_type et = DS_GGUF_U8;
    uint64_t n = 0, nm = 0, i;
    ds_status s;
    if (ds_gguf_get_str(g, "tokenizer.ggml.model", &model) != DS_OK) return ds__fail(DS_ERR_NOT_FOUND, DS__TG ": no tokenizer.ggml.model key");
    if (model.len == 4 && !memcmp(model.ptr, "gpt2", 4)) L->sp.model = DS__TOK_BPE;
    else if (model.len == 5 && !memcmp(model.ptr, "llama", 5)) L->sp.model = DS__TOK_SPM;
    else return ds__fail(DS_ERR_UNSUPPORTED, DS__TG ": tokenizer.ggml.model '%.*s' is not supported (gpt2, llama)", (int)DS__MIN(model.len, 64), model.ptr);
    if ((s = ds__gguf_pre(g, L->sp.model, &L->sp.pre)) != DS_OK) return s;
    if (ds_gguf_get_arr(g, "tokenizer.ggml.tokens", &et, &n, NULL) != DS_OK || et != DS_GGUF_STRING) return ds__fail(DS_ERR_FORMAT, DS__TG ": tokenizer.ggml.tokens is missing or not a string array");
    if (n == 0 || n >= (uint64_t)INT32_MAX / 2) return ds__fail(DS_ERR_FORMAT, DS__TG ": %llu tokens", (unsigned long long)n);
    if (ds_gguf_find(g, "tokenizer.ggml.merges")) {
        if (ds_gguf_get_arr(g, "tokenizer.ggml.merges", &et, &nm, NULL) != DS_OK || et != DS_GGUF_STRING) return ds__fail(DS_ERR_FORMAT, DS__TG ": tokenizer.ggml.merges is not a string array");
    }
    L->tokens = DS__CAST(ds_str *, ds__calloc((size_t)n, sizeof(ds_str)));
    L->spans = DS__CAST(ds__span *, ds__calloc((size_t)n, sizeof(ds__span)));
    L->types = DS__CAST(int32_t *, ds__calloc((size_t)n, sizeof(int32_t)));
    L->merge_strs = DS__CAST(ds_str *, ds__calloc((size_t)nm + 1, sizeof(ds_str)));
    L->merges = DS__CAST(ds__span *, ds__calloc((size_t)nm * 2 + 1, sizeof(ds__span)));
    if (!L->tokens || !L->spans || !L->types || !L->merge_strs || !L->merges) return ds__fail(DS_ERR_NO_MEMORY, DS__TG ": out of memory");
    if ((s = ds_gguf_get_arr_str(g, "tokenizer.ggml.tokens", L->tokens, n)) != DS_OK) return s;
    for (i = 0; i < n; i++) {
        L->spans[i].p = L->tokens[i].ptr;
        L->spans[i].n = L->tokens[i].len;
        L->types[i] = DS__TT_NORMAL;
    }
    if (ds_gguf_find(g, "tokenizer.ggml.token_type") && (s = ds__gguf_arr_copy(g, "tokenizer.ggml.token_type", DS_GGUF_I32, n, L->types, sizeof(int32_t))) != DS_OK) return s;
    if (ds_gguf_find(g, "tokenizer.ggml.scores")) {
        if (!(L->scores = DS__CAST(float *, ds__calloc((size_t)n, sizeof(float))))) return ds__fail(DS_ERR_NO_MEMORY, DS__TG ": out of memory");
        if ((s = ds__gguf_arr_copy(g, "tokenizer.ggml.scores", DS_GGUF_F32, n, L->scores, sizeof(float))) != DS_OK) return s;
    }
    if (nm && (s = ds_gguf_get_arr_str(g, "tokenizer.ggml.merges", L->merge_strs, nm)) != DS_OK) return s;
    for (i = 0; i < nm; i++) {
        const ds_str *m = &L->merge_strs[i];
        const char *sp = m->len > 1 ? DS__CAST(const char *, memchr(m->ptr + 1, ' ', m->len - 1)) : NULL;
        if (!sp) return ds__fail(DS_ERR_FORMAT, DS__TG ": merge %llu has no space", (unsigned long long)i);
        L->merges[2 * i].p = m->ptr;
        L->merges[2 * i].n = (size_t)(sp - m->ptr);
        L->merges[2 * i + 1].p = sp + 1;
        L->merges[2 * i + 1].n = m->len - (size_t)(sp + 1 - m->ptr);
    }
    L->sp.n_vocab = (int32_t)n;
    L->sp.tokens = L->spans;
    L->sp.types = L->types;
    L->sp.scores = L->scores;
    L->sp.merges = L->merges;
    L->sp.n_merges = (int64_t)nm;
    L->sp.bos = ds__gguf_id(g, "tokenizer.ggml.bos_token_id");
    L->sp.eos = ds__gguf_id(g, "tokenizer.ggml.eos_token_id");
    L->sp.eot = ds__gguf_id(g, "tokenizer.ggml.eot_token_id");
    L->sp.eom = ds__gguf_id(g, "tokenizer.ggml.eom_token_id");
    L->sp.unk = ds__gguf_id(g, "tokenizer.ggml.unknown_token_id");
    L->sp.pad = ds__gguf_id(g, "tokenizer.ggml.padding_token_id");
    L->sp.add_bos = ds__gguf_flag(g, "tokenizer.ggml.add_bos_token", L->sp.model == DS__TOK_SPM);
    L->sp.add_eos = ds__gguf_flag(g, "tokenizer.ggml.add_eos_token", 0);
    L->sp.add_space_prefix = ds__gguf_flag(g, "tokenizer.ggml.add_space_prefix", L->sp.model == DS__TOK_SPM);
    L->sp.ignore_merges = L->sp.pre == DS__PRE_LLAMA3;
    L->sp.byte_fallback = L->sp.model == DS__TOK_SPM;
    L->sp.what = DS__TG;
    return DS_OK;
}

DS_API ds_status ds_tokenizer_from_gguf(const ds_gguf *g, ds_tokenizer **out) {
    ds__gguf_load L;
    ds_status s;
    if (!g || !out) return ds__fail(DS_ERR_INVALID_ARG, DS__TG ": NULL argument");
    *out = NULL;
    memset(&L, 0, sizeof L);
    s = ds__gguf_load_spec(g, &L);
    if (s == DS_OK) s = ds__tok_build(&L.sp, out);
    ds_free(L.tokens);
    ds_free(L.spans);
    ds_free(L.types);
    ds_free(L.scores);
    ds_free(L.merge_strs);
    ds_free(L.merges);
    return s;
}

/* ---- saving ------------------------------------------------------------------------------ */
static void ds__json_write_split(ds__buf *b, const char *pattern) {
    ds__buf_puts(b, "{\"type\":\"Split\",\"pattern\":{\"Regex\":");
    ds__json_write_str(b, pattern, strlen(pattern));
    ds__buf_puts(b, "},\"behavior\":\"Isolated\",\"invert\":false},");
}

static void ds__json_write_pre(ds__buf *b, int pre) {
    const char *bl = "{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":true,\"use_regex\":";
    switch (pre) {
    case DS__PRE_GPT2: ds__buf_printf(b, "%strue}", bl); break;
    case DS__PRE_SMOLLM: ds__buf_printf(b, "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Digits\",\"individual_digits\":true},%strue}]}", bl); break;
    case DS__PRE_LLAMA3: case DS__PRE_QWEN2: case DS__PRE_DSV3:
        ds__buf_puts(b, "{\"type\":\"Sequence\",\"pretokenizers\":[");
        if (pre == DS__PRE_DSV3) {
            ds__json_write_split(b, ds__pat_dsv3_digits);
            ds__json_write_split(b, ds__pat_dsv3_cjk);
            ds__json_write_split(b, ds__pat_dsv3);
        } else {
            ds__json_write_split(b, pre == DS__PRE_LLAMA3 ? ds__pat_llama3 : ds__pat_qwen2);
        }
        ds__buf_printf(b, "%sfalse}]}", bl);
        break;
    default: ds__buf_puts(b, "null"); break;
    }
}

DS_API ds_status ds_tokenizer_to_json(const ds_tokenizer *t, char **json, size_t *len) {
    ds__buf b;
    int32_t i;
    int64_t m;
    int first = 1;
    if (!t || !json) return ds__fail(DS_ERR_INVALID_ARG, "tokenizer_to_json: NULL argument");
    *json = NULL;
    if (t->model != DS__TOK_BPE) return ds__fail(DS_ERR_UNSUPPORTED, "tokenizer_to_json: only byte-level BPE vocabularies can be written as tokenizer.json");
    memset(&b, 0, sizeof b);
    ds__buf_puts(&b, "{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,\"added_tokens\":[");
    for (i = 0; i < t->n_vocab; i++) {
        size_t n;
        const char *p = ds__tok_str(t, i, &n);
        if (t->type[i] != DS__TT_CONTROL && t->type[i] != DS__TT_USER) continue;
        ds__buf_printf(&b, "%s{\"id\":%d,\"content\":", first ? "" : ",", (int)i);
        ds__json_write_str(&b, p, n);
        ds__buf_printf(&b, ",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":%s}", t->type[i] == DS__TT_CONTROL ? "true" : "false");
        first = 0;
    }
    ds__buf_puts(&b, t->nfc ? "],\"normalizer\":{\"type\":\"NFC\"},\"pre_tokenizer\":" : "],\"normalizer\":null,\"pre_tokenizer\":");
    ds__json_write_pre(&b, t->pre);
    ds__buf_puts(&b, ",\"post_processor\":");
    if (t->add_bos && t->bos >= 0) {
        size_t n;
        const char *p = ds__tok_str(t, t->bos, &n);
        ds__buf_puts(&b, "{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":");
        ds__json_write_str(&b, p, n);
        ds__buf_puts(&b, ",\"type_id\":0}},{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}],\"pair\":[{\"SpecialToken\":{\"id\":");
        ds__json_write_str(&b, p, n);
        ds__buf_puts(&b, ",\"type_id\":0}},{\"Sequence\":{\"id\":\"A\",\"type_id\":0}},{\"Sequence\":{\"id\":\"B\",\"type_id\":1}}],\"special_tokens\":{");
        ds__json_write_str(&b, p, n);
        ds__buf_puts(&b, ":{\"id\":");
        ds__json_write_str(&b, p, n);
        ds__buf_printf(&b, ",\"ids\":[%d],\"tokens\":[", (int)t->bos);
        ds__json_write_str(&b, p, n);
        ds__buf_puts(&b, "]}}}");
    } else {
        ds__buf_puts(&b, "null");
    }
    ds__buf_puts(&b, ",\"decoder\":{\"type\":\"ByteLevel\",\"add_prefix_space\":true,\"trim_offsets\":true,\"use_regex\":true},");
    ds__buf_printf(&b, "\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":null,\"continuing_subword_prefix\":null,\"end_of_word_suffix\":null,"
                       "\"fuse_unk\":false,\"byte_fallback\":false,\"ignore_merges\":%s,\"vocab\":{", t->ignore_merges ? "true" : "false");
    for (i = 0; i < t->n_vocab; i++) {
        size_t n;
        const char *p = ds__tok_str(t, i, &n);
        if (i) ds__buf_putc(&b, ',');
        ds__json_write_str(&b, p, n);
        ds__buf_printf(&b, ":%d", (int)i);
    }
    ds__buf_puts(&b, "},\"merges\":[");
    for (m = 0; m < t->n_merges; m++) {
        size_t na, nb;
        const char *pa = ds__tok_str(t, (int32_t)(t->merge_key[m] >> 32), &na), *pb = ds__tok_str(t, (int32_t)(t->merge_key[m] & 0xFFFFFFFFu), &nb);
        ds__buf_puts(&b, m ? ",[" : "[");
        ds__json_write_str(&b, pa, na);
        ds__buf_putc(&b, ',');
        ds__json_write_str(&b, pb, nb);
        ds__buf_putc(&b, ']');
    }
    ds__buf_puts(&b, "]}}\n");
    if (b.oom) {
        ds__buf_free(&b);
        return ds__fail(DS_ERR_NO_MEMORY, "tokenizer_to_json: out of memory");
    }
    *json = b.p;
    if (len) *len = b.n;
    return DS_OK;
}

DS_API ds_status ds_tokenizer_save_json(const ds_tokenizer *t, const char *path) {
    char *json;
    size_t n;
    FILE *f;
    ds_status s;
    if (!path) return ds__fail(DS_ERR_INVALID_ARG, "tokenizer_save_json: NULL path");
    if ((s = ds_tokenizer_to_json(t, &json, &n)) != DS_OK) return s;
    f = fopen(path, "wb");
    if (!f) {
        ds_free(json);
        return ds__fail(DS_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    }
    if (fwrite(json, 1, n, f) != n || fclose(f) != 0) {
        ds_free(json);
        return ds__fail(DS_ERR_IO, "%s: write failed", path);
    }
    ds_free(json);
    return DS_OK;
}

DS_API ds_status ds_tokenizer_to_gguf(const ds_tokenizer *t, ds_gguf_writer *w) {
    static const char *const pre_gguf[DS__PRE_COUNT_] = {"gpt-2", "llama-bpe", "qwen2", "smollm", "deepseek-v3", "default"};
    const char **strs = NULL;
    char *merge_text = NULL;
    int32_t *types = NULL, i;
    int64_t m;
    size_t total = 0;
    ds_status s;
    if (!t || !w) return ds__fail(DS_ERR_INVALID_ARG, "tokenizer_to_gguf: NULL argument");
    strs = DS__CAST(const char **, ds__calloc((size_t)DS__MAX((int64_t)t->n_vocab, t->n_merges) + 1, sizeof(char *)));
    types = DS__CAST(int32_t *, ds__calloc((size_t)t->n_vocab, sizeof(int32_t)));
    for (m = 0; m < t->n_merges; m++) total += (t->off[(t->merge_key[m] >> 32) + 1] - t->off[t->merge_key[m] >> 32]) + (t->off[(t->merge_key[m] & 0xFFFFFFFFu) + 1] - t->off[t->merge_key[m] & 0xFFFFFFFFu]) + 2;
    merge_text = DS__CAST(char *, ds_alloc(total + t->off[t->n_vocab] + (size_t)t->n_vocab + 1));  /* merges, then tokens */
    if (!strs || !types || !merge_text) {
        s = ds__fail(DS_ERR_NO_MEMORY, "tokenizer_to_gguf: out of memory");
        goto done;
    }
    if ((s = ds_gguf_writer_set_str(w, "tokenizer.ggml.model", t->model == DS__TOK_BPE ? "gpt2" : "llama")) != DS_OK) goto done;
    if ((s = ds_gguf_writer_set_str(w, "tokenizer.ggml.pre", pre_gguf[t->pre])) != DS_OK) goto done;
    {   /* NUL-terminated copies of the tokens: the writer takes C strings */
        char *p = merge_text + total;
        for (i = 0; i < t->n_vocab; i++) {
            size_t n;
            const char *src = ds__tok_str(t, i, &n);
            if (memchr(src, 0, n)) {
                s = ds__fail(DS_ERR_UNSUPPORTED, "tokenizer_to_gguf: token %d contains a NUL byte", (int)i);
                goto done;
            }
            memcpy(p, src, n);
            p[n] = 0;
            strs[i] = p;
            p += n + 1;
            types[i] = t->type[i];
        }
    }
    if ((s = ds_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", strs, (uint64_t)t->n_vocab)) != DS_OK) goto done;
    if ((s = ds_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", DS_GGUF_I32, types, (uint64_t)t->n_vocab)) != DS_OK) goto done;
    if (t->score && (s = ds_gguf_writer_set_arr(w, "tokenizer.ggml.scores", DS_GGUF_F32, t->score, (uint64_t)t->n_vocab)) != DS_OK) goto done;
    if (t->n_merges) {
        char *p = merge_text;
        for (m = 0; m < t->n_merges; m++) {
            size_t na, nb;
            const char *pa = ds__tok_str(t, (int32_t)(t->merge_key[m] >> 32), &na), *pb = ds__tok_str(t, (int32_t)(t->merge_key[m] & 0xFFFFFFFFu), &nb);
            strs[m] = p;
            memcpy(p, pa, na);
            p[na] = ' ';
            memcpy(p + na + 1, pb, nb);
            p[na + 1 + nb] = 0;
            p += na + nb + 2;
        }
        if ((s = ds_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", strs, (uint64_t)t->n_merges)) != DS_OK) goto done;
    }
    if (t->bos >= 0 && (s = ds_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)t->bos)) != DS_OK) goto done;
    if (t->eos >= 0 && (s = ds_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)t->eos)) != DS_OK) goto done;
    if (t->eot >= 0 && (s = ds_gguf_writer_set_u32(w, "tokenizer.ggml.eot_token_id", (uint32_t)t->eot)) != DS_OK) goto done;
    if (t->unk >= 0 && (s = ds_gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)t->unk)) != DS_OK) goto done;
    if (t->pad >= 0 && (s = ds_gguf_writer_set_u32(w, "tokenizer.ggml.padding_token_id", (uint32_t)t->pad)) != DS_OK) goto done;
    if ((s = ds_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", t->add_bos)) != DS_OK) goto done;
    if ((s = ds_gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", t->add_eos)) != DS_OK) goto done;
    s = ds_gguf_writer_set_bool(w, "tokenizer.ggml.add_space_prefix", t->add_space_prefix);
done:
    ds_free(strs);
    ds_free(types);
    ds_free(merge_text);
    return s;
}

#if !defined(DS_NO_TOKENIZER_TRAIN)
/* ---- BPE training ------------------------------------------------------------------------ */
/* The algorithm of Hugging Face's BpeTrainer, reproduced so that the same words give the same
   merges: pair counts over distinct words weighted by their counts; a max-heap of (count,
   pair, words where it was formed) where equal counts put the smaller pair (left id, then
   right id) first; a popped entry whose count went stale is pushed back with the current
   count; merging a pair touches only the words its entry lists and updates the neighbouring
   pairs' counts, each newly formed pair getting a fresh entry for the words it appeared in.
   A pair merged twice (two merges can make the same string) keeps its last rank. */
typedef struct ds__tw {
    int32_t *sym;
    int32_t n;
    int64_t count;
} ds__tw;

typedef struct ds__th {
    int64_t count;
    uint64_t pair;
    size_t pos, n_pos;   /* word indices in the trainer's pool */
} ds__th;

typedef struct ds__pc_slot {
    uint64_t key;
    int64_t count;
    int used;
} ds__pc_slot;

typedef struct ds__tr_formed {
    uint64_t pair;
    uint32_t word;
} ds__tr_formed;

typedef struct ds__tr_merge {
    uint64_t pair;
    int32_t tok;
} ds__tr_merge;

typedef struct ds__trainer {
    ds_tokenizer *pre;           /* scanners only */
    /* distinct words: bytes -> count */
    ds__buf word_bytes;
    size_t *word_off;            /* n_words + 1 */
    int64_t *word_count;
    uint32_t *word_slot, word_mask;
    size_t n_words, cap_words, cap_count;
    /* training state */
    ds__tw *w;
    ds__pc_slot *pc;
    uint32_t pc_mask;
    size_t pc_used;
    ds__th *heap;
    size_t heap_n, heap_cap;
    int32_t *pool;
    size_t pool_n, pool_cap;
    ds__tr_formed *chg;          /* pairs formed this round, with their word */
    size_t chg_n, chg_cap;
    /* vocabulary */
    ds__buf text;
    size_t *tok_off;
    size_t n_tok, cap_tok;
    uint32_t *tok_slot, tok_mask;
    ds__tr_merge *merges;        /* in the order made */
    size_t n_merges, cap_merges;
    int oom;
} ds__trainer;

static int ds__tr_heap_before(const ds__th *a, const ds__th *b) {
    if (a->count != b->count) return a->count > b->count;
    return a->pair < b->pair;
}

#define DS__TR_BEFORE(a, b) ds__tr_heap_before(&(a), &(b))
DS__DEFINE_HEAP(ds__tr, ds__trainer, ds__th, DS__TR_BEFORE)

/* pair count slot (created at 0 when absent) */
static ds__pc_slot *ds__tr_pc(ds__trainer *tr, uint64_t key) {
    uint32_t h;
    if ((tr->pc_used + 1) * 2 > (size_t)tr->pc_mask + 1) {
        uint32_t cap = (tr->pc_mask + 1) * 2, j;
        ds__pc_slot *old = tr->pc, *nw = DS__CAST(ds__pc_slot *, ds__calloc(cap, sizeof *nw));
        if (!nw) {
            tr->oom = 1;
            return NULL;
        }
        for (j = 0; j <= tr->pc_mask; j++) {
            if (!old[j].used) continue;
            h = (uint32_t)ds__hash_u64(old[j].key) & (cap - 1);
            while (nw[h].used) h = (h + 1) & (cap - 1);
            nw[h] = old[j];
        }
        ds_free(old);
        tr->pc = nw;
        tr->pc_mask = cap - 1;
    }
    h = (uint32_t)ds__hash_u64(key) & tr->pc_mask;
    while (tr->pc[h].used && tr->pc[h].key != key) h = (h + 1) & tr->pc_mask;
    if (!tr->pc[h].used) {
        tr->pc[h].used = 1;
        tr->pc[h].key = key;
        tr->pc_used++;
    }
    return &tr->pc[h];
}

static int32_t ds__tr_find_tok(const ds__trainer *tr, const char *s, size_t n) {
    uint32_t h = (uint32_t)ds__hash_bytes(s, n) & tr->tok_mask, slot;
    while ((slot = tr->tok_slot[h]) != 0) {
        size_t a = tr->tok_off[slot - 1], b = tr->tok_off[slot];
        if (b - a == n && memcmp(tr->text.p + a, s, n) == 0) return (int32_t)(slot - 1);
        h = (h + 1) & tr->tok_mask;
    }
    return -1;
}

/* appends a token (the table is sized for the final vocabulary up front) */
static int32_t ds__tr_add_tok(ds__trainer *tr, const char *s, size_t n) {
    uint32_t h = (uint32_t)ds__hash_bytes(s, n) & tr->tok_mask;
    int32_t id = (int32_t)tr->n_tok;
    if (!ds__grow(DS__CAST(void **, &tr->tok_off), &tr->cap_tok, tr->n_tok + 2, sizeof(size_t))) {
        tr->oom = 1;
        return -1;
    }
    ds__buf_put(&tr->text, s, n);
    tr->tok_off[tr->n_tok + 1] = tr->text.n;
    tr->n_tok++;
    while (tr->tok_slot[h]) h = (h + 1) & tr->tok_mask;
    tr->tok_slot[h] = (uint32_t)id + 1;
    return id;
}

/* counts one pre-tokenized piece */
static void ds__tr_word(ds__tok_run *r, const unsigned char *p, size_t n) {
    ds__trainer *tr = DS__CAST(ds__trainer *, r->user);
    uint32_t h, slot;
    if (!n || tr->oom) return;
    if ((tr->n_words + 1) * 2 > (size_t)tr->word_mask + 1) {
        uint32_t cap = (tr->word_mask + 1) * 2, j;
        uint32_t *nw = DS__CAST(uint32_t *, ds__calloc(cap, sizeof *nw));
        if (!nw) {
            tr->oom = 1;
            return;
        }
        for (j = 0; j <= tr->word_mask; j++) {
            uint32_t s = tr->word_slot[j];
            if (!s) continue;
            h = (uint32_t)ds__hash_bytes(tr->word_bytes.p + tr->word_off[s - 1], tr->word_off[s] - tr->word_off[s - 1]) & (cap - 1);
            while (nw[h]) h = (h + 1) & (cap - 1);
            nw[h] = s;
        }
        ds_free(tr->word_slot);
        tr->word_slot = nw;
        tr->word_mask = cap - 1;
    }
    h = (uint32_t)ds__hash_bytes(p, n) & tr->word_mask;
    while ((slot = tr->word_slot[h]) != 0) {
        size_t a = tr->word_off[slot - 1], b = tr->word_off[slot];
        if (b - a == n && memcmp(tr->word_bytes.p + a, p, n) == 0) {
            tr->word_count[slot - 1]++;
            return;
        }
        h = (h + 1) & tr->word_mask;
    }
    if (!ds__grow(DS__CAST(void **, &tr->word_off), &tr->cap_words, tr->n_words + 2, sizeof(size_t))) {
        tr->oom = 1;
        return;
    }
    if (!ds__grow(DS__CAST(void **, &tr->word_count), &tr->cap_count, tr->n_words + 1, sizeof(int64_t))) {
        tr->oom = 1;
        return;
    }
    ds__buf_put(&tr->word_bytes, p, n);
    tr->word_off[tr->n_words + 1] = tr->word_bytes.n;
    tr->word_count[tr->n_words] = 1;
    tr->word_slot[h] = (uint32_t)++tr->n_words;
}

static int ds__tr_formed_cmp(const void *x, const void *y) {
    const ds__tr_formed *a = (const ds__tr_formed *)x, *b = (const ds__tr_formed *)y;
    if (a->pair != b->pair) return a->pair < b->pair ? -1 : 1;
    return a->word < b->word ? -1 : a->word > b->word;
}

static void ds__tr_formed_add(ds__trainer *tr, uint64_t pair, uint32_t word) {
    if (!ds__grow(DS__CAST(void **, &tr->chg), &tr->chg_cap, tr->chg_n + 1, sizeof *tr->chg)) {
        tr->oom = 1;
        return;
    }
    tr->chg[tr->chg_n].pair = pair;
    tr->chg[tr->chg_n].word = word;
    tr->chg_n++;
}

/* one heap entry per pair formed this round, listing the (distinct) words it formed in */
static void ds__tr_push_formed(ds__trainer *tr) {
    size_t i = 0;
    if (tr->chg_n > 1) qsort(tr->chg, tr->chg_n, sizeof *tr->chg, ds__tr_formed_cmp);   /* chg is NULL when empty */
    while (i < tr->chg_n && !tr->oom) {
        ds__th e;
        size_t j = i;
        ds__pc_slot *pc = ds__tr_pc(tr, tr->chg[i].pair);
        if (!pc) return;
        e.pair = tr->chg[i].pair;
        e.count = pc->count;
        e.pos = tr->pool_n;
        for (; j < tr->chg_n && tr->chg[j].pair == e.pair; j++) {
            if (j > i && tr->chg[j].word == tr->chg[j - 1].word) continue;
            if (!ds__grow(DS__CAST(void **, &tr->pool), &tr->pool_cap, tr->pool_n + 1, sizeof(int32_t))) {
                tr->oom = 1;
                return;
            }
            tr->pool[tr->pool_n++] = (int32_t)tr->chg[j].word;
        }
        e.n_pos = tr->pool_n - e.pos;
        if (e.count > 0) ds__tr_push(tr, e);
        else tr->pool_n = e.pos;
        i = j;
    }
    tr->chg_n = 0;
}

static uint64_t ds__pair_key(int32_t a, int32_t b) { return ((uint64_t)(uint32_t)a << 32) | (uint32_t)b; }

static void ds__tr_count(ds__trainer *tr, uint64_t pair, int64_t delta) {
    ds__pc_slot *pc = ds__tr_pc(tr, pair);
    if (pc) pc->count += delta;
}

/* merges (a, b) -> c throughout word wi, left to right without overlap, updating the
   neighbouring pairs' counts */
static void ds__tr_merge_word(ds__trainer *tr, uint32_t wi, int32_t a, int32_t b, int32_t c) {
    ds__tw *w = &tr->w[wi];
    int32_t i = 0, k;
    while (i < w->n - 1) {
        if (w->sym[i] != a || w->sym[i + 1] != b) {
            i++;
            continue;
        }
        if (i > 0) {
            ds__tr_count(tr, ds__pair_key(w->sym[i - 1], a), -w->count);
            ds__tr_count(tr, ds__pair_key(w->sym[i - 1], c), w->count);
            ds__tr_formed_add(tr, ds__pair_key(w->sym[i - 1], c), wi);
        }
        w->sym[i] = c;
        for (k = i + 1; k < w->n - 1; k++) w->sym[k] = w->sym[k + 1];
        w->n--;
        if (i < w->n - 1) {
            ds__tr_count(tr, ds__pair_key(b, w->sym[i + 1]), -w->count);
            ds__tr_count(tr, ds__pair_key(c, w->sym[i + 1]), w->count);
            ds__tr_formed_add(tr, ds__pair_key(c, w->sym[i + 1]), wi);
        }
        i++;
    }
}

/* the 256 byte symbols in code point order, after the special tokens */
static ds_status ds__tr_alphabet(ds__trainer *tr, const ds_bpe_train_config *cfg, int32_t *byte_id) {
    int i, cp;
    for (i = 0; i < cfg->n_special; i++) {
        const char *s = cfg->special_tokens[i];
        if (!s || !*s) return ds__fail(DS_ERR_INVALID_ARG, "bpe_train: special token %d is empty", i);
        if (ds__tr_find_tok(tr, s, strlen(s)) < 0) ds__tr_add_tok(tr, s, strlen(s));
    }
    for (cp = 0; cp < 324; cp++) {
        char tmp[4];
        int b = tr->pre->char_byte[cp];
        if (b < 0) continue;
        byte_id[b] = ds__tr_find_tok(tr, tmp, (size_t)ds__utf8_encode((uint32_t)cp, tmp));
        if (byte_id[b] < 0) byte_id[b] = ds__tr_add_tok(tr, tmp, (size_t)ds__utf8_encode((uint32_t)cp, tmp));
    }
    return tr->oom || tr->text.oom ? ds__fail(DS_ERR_NO_MEMORY, "bpe_train: out of memory") : DS_OK;
}

/* words as byte symbols, and the first heap entries */
static void ds__tr_words(ds__trainer *tr, const int32_t *byte_id) {
    size_t i;
    int32_t j;
    tr->w = DS__CAST(ds__tw *, ds__calloc(tr->n_words + 1, sizeof(ds__tw)));
    if (!tr->w) {
        tr->oom = 1;
        return;
    }
    for (i = 0; i < tr->n_words && !tr->oom; i++) {
        const unsigned char *p = (const unsigned char *)tr->word_bytes.p + tr->word_off[i];
        ds__tw *w = &tr->w[i];
        w->n = (int32_t)(tr->word_off[i + 1] - tr->word_off[i]);
        w->count = tr->word_count[i];
        w->sym = DS__CAST(int32_t *, ds__calloc((size_t)w->n, sizeof(int32_t)));
        if (!w->sym) {
            tr->oom = 1;
            return;
        }
        for (j = 0; j < w->n; j++) w->sym[j] = byte_id[p[j]];
        for (j = 0; j + 1 < w->n; j++) {
            uint64_t key = ds__pair_key(w->sym[j], w->sym[j + 1]);
            ds__tr_count(tr, key, w->count);
            ds__tr_formed_add(tr, key, (uint32_t)i);
        }
    }
    ds__tr_push_formed(tr);
}

static void ds__tr_merges(ds__trainer *tr, const ds_bpe_train_config *cfg, size_t vocab_size) {
    ds__buf cat;
    memset(&cat, 0, sizeof cat);
    while (tr->n_tok < vocab_size && tr->heap_n && !tr->oom) {
        ds__th top = ds__tr_pop(tr);
        ds__pc_slot *pc = ds__tr_pc(tr, top.pair);
        int32_t a = (int32_t)(top.pair >> 32), b = (int32_t)(top.pair & 0xFFFFFFFFu), c;
        size_t k;
        if (!pc) break;
        if (top.count != pc->count) {
            top.count = pc->count;
            ds__tr_push(tr, top);
            continue;
        }
        if (top.count < 1 || (int64_t)cfg->min_frequency > top.count) break;
        cat.n = 0;
        ds__buf_put(&cat, tr->text.p + tr->tok_off[a], tr->tok_off[a + 1] - tr->tok_off[a]);
        ds__buf_put(&cat, tr->text.p + tr->tok_off[b], tr->tok_off[b + 1] - tr->tok_off[b]);
        if (cat.oom) {
            tr->oom = 1;
            break;
        }
        if ((c = ds__tr_find_tok(tr, cat.p, cat.n)) < 0) c = ds__tr_add_tok(tr, cat.p, cat.n);
        if (c < 0 || !ds__grow(DS__CAST(void **, &tr->merges), &tr->cap_merges, tr->n_merges + 1, sizeof *tr->merges)) {
            tr->oom = 1;
            break;
        }
        tr->merges[tr->n_merges].pair = top.pair;
        tr->merges[tr->n_merges++].tok = c;
        for (k = 0; k < top.n_pos; k++) ds__tr_merge_word(tr, (uint32_t)tr->pool[top.pos + k], a, b, c);
        ds__tr_push_formed(tr);
        if (cfg->progress && (tr->n_merges & 255) == 0) cfg->progress(cfg->user, "merges", (double)tr->n_tok / (double)vocab_size);
    }
    ds__buf_free(&cat);
}

static ds_status ds__tr_collect(ds__trainer *tr, const ds_bpe_train_config *cfg, const char *const *texts, const size_t *lens, int n_texts) {
    ds__tok_run r;
    int i;
    memset(&r, 0, sizeof r);
    r.t = tr->pre;
    r.on_piece = ds__tr_word;
    r.user = tr;
    for (i = 0; i < n_texts && !tr->oom; i++) {
        size_t len = lens ? lens[i] : strlen(texts[i]), at = 0, clean_len;
        char *clean = NULL;
        const char *text = texts[i];
        if (ds__utf8_valid_prefix(text, len) < len) {
            if (!(clean = ds__utf8_sanitize(text, len, &clean_len))) return ds__fail(DS_ERR_NO_MEMORY, "bpe_train: out of memory");
            text = clean;
            len = clean_len;
        }
        while (at < len && !tr->oom) {
            const char *nl = DS__CAST(const char *, memchr(text + at, '\n', len - at));
            size_t end = nl ? (size_t)(nl - text) + 1 : len;
            ds__tok_segment(&r, (const unsigned char *)text + at, end - at);
            if (cfg->progress && (at >> 20) != (end >> 20)) cfg->progress(cfg->user, "words", ((double)i + (double)end / (double)len) / n_texts);
            at = end;
        }
        ds_free(clean);
    }
    ds__tok_run_free(&r);
    return tr->oom || r.oom || tr->word_bytes.oom ? ds__fail(DS_ERR_NO_MEMORY, "bpe_train: out of memory") : DS_OK;
}

static void ds__tr_free(ds__trainer *tr) {
    size_t i;
    ds_tokenizer_free(tr->pre);
    ds__buf_free(&tr->word_bytes);
    ds_free(tr->word_off);
    ds_free(tr->word_count);
    ds_free(tr->word_slot);
    for (i = 0; tr->w && i < tr->n_words; i++) ds_free(tr->w[i].sym);
    ds_free(tr->w);
    ds_free(tr->pc);
    ds_free(tr->heap);
    ds_free(tr->pool);
    ds_free(tr->chg);
    ds__buf_free(&tr->text);
    ds_free(tr->tok_off);
    ds_free(tr->tok_slot);
    ds_free(tr->merges);
}

/* the trained vocabulary as a tokenizer: a pair merged twice keeps its last rank */
static ds_status ds__tr_finish(ds__trainer *tr, const ds_bpe_train_config *cfg, ds_tokenizer **out) {
    ds__tok_spec sp;
    ds__span *tokens = DS__CAST(ds__span *, ds__calloc(tr->n_tok + 1, sizeof(ds__span)));
    ds__span *merges = DS__CAST(ds__span *, ds__calloc(2 * tr->n_merges + 1, sizeof(ds__span)));
    int32_t *types = DS__CAST(int32_t *, ds__calloc(tr->n_tok + 1, sizeof(int32_t)));
    uint8_t *last = DS__CAST(uint8_t *, ds__calloc(tr->n_merges + 1, 1));
    size_t i, j, nm = 0;
    ds_status s;
    if (!tokens || !merges || !types || !last) {
        s = ds__fail(DS_ERR_NO_MEMORY, "bpe_train: out of memory");
        goto done;
    }
    for (i = 0; i < tr->n_tok; i++) {
        tokens[i].p = tr->text.p + tr->tok_off[i];
        tokens[i].n = tr->tok_off[i + 1] - tr->tok_off[i];
        types[i] = (int)i < cfg->n_special ? DS__TT_CONTROL : DS__TT_NORMAL;
    }
    for (i = 0; i < tr->n_merges; i++) {
        last[i] = 1;
        for (j = i + 1; j < tr->n_merges && last[i]; j++)
            if (tr->merges[j].pair == tr->merges[i].pair) last[i] = 0;
    }
    for (i = 0; i < tr->n_merges; i++) {
        int32_t a = (int32_t)(tr->merges[i].pair >> 32), b = (int32_t)(tr->merges[i].pair & 0xFFFFFFFFu);
        if (!last[i]) continue;
        merges[2 * nm] = tokens[a];
        merges[2 * nm + 1] = tokens[b];
        nm++;
    }
    memset(&sp, 0, sizeof sp);
    sp.model = DS__TOK_BPE;
    sp.pre = tr->pre->pre;
    sp.n_vocab = (int32_t)tr->n_tok;
    sp.tokens = tokens;
    sp.types = types;
    sp.merges = merges;
    sp.n_merges = (int64_t)nm;
    sp.bos = sp.eos = sp.eot = sp.eom = sp.unk = sp.pad = -1;
    sp.what = "bpe_train";
    if ((s = ds__tok_build(&sp, out)) == DS_OK) ds__tok_guess_eos(*out);
done:
    ds_free(tokens);
    ds_free(merges);
    ds_free(types);
    ds_free(last);
    return s;
}

static int ds__pre_by_name(const char *name) {
    int i;
    if (!name) return DS__PRE_GPT2;
    for (i = 0; i < DS__PRE_NONE; i++)
        if (!strcmp(name, ds__pre_names[i])) return i;
    return -1;
}

DS_API ds_status ds_bpe_train(const ds_bpe_train_config *cfg, const char *const *texts, const size_t *lens, int n_texts, ds_tokenizer **out) {
    ds__trainer tr;
    int32_t byte_id[256];
    size_t vocab_size, total;
    int pre, i;
    ds_status s;
    if (!cfg || !out || (n_texts > 0 && !texts) || n_texts < 0 || (cfg->n_special > 0 && !cfg->special_tokens) || cfg->n_special < 0)
        return ds__fail(DS_ERR_INVALID_ARG, "bpe_train: bad argument");
    *out = NULL;
    if ((pre = ds__pre_by_name(cfg->pre)) < 0) return ds__fail(DS_ERR_UNSUPPORTED, "bpe_train: pre-tokenizer '%s' is not one of gpt2, llama3, qwen2, smollm, deepseek-v3", cfg->pre);
    for (i = 0, total = 0; i < n_texts; i++) total += !texts[i] ? 0 : lens ? lens[i] : strlen(texts[i]);
    if (total == 0) return ds__fail(DS_ERR_INVALID_ARG, "bpe_train: the texts are empty: there is nothing to learn merges from");
    vocab_size = cfg->vocab_size > 0 ? (size_t)cfg->vocab_size : 30000;
    if (vocab_size > (size_t)INT32_MAX / 4) return ds__fail(DS_ERR_INVALID_ARG, "bpe_train: vocabulary size %zu is too large", vocab_size);
    memset(&tr, 0, sizeof tr);
    tr.pre = DS__CAST(ds_tokenizer *, ds__calloc(1, sizeof *tr.pre));
    tr.word_mask = 1023;
    tr.word_slot = DS__CAST(uint32_t *, ds__calloc(1024, sizeof(uint32_t)));
    tr.pc_mask = 1023;
    tr.pc = DS__CAST(ds__pc_slot *, ds__calloc(1024, sizeof(ds__pc_slot)));
    tr.tok_mask = ds__pow2_slots(vocab_size + (size_t)cfg->n_special + 256) - 1;
    tr.tok_slot = DS__CAST(uint32_t *, ds__calloc((size_t)tr.tok_mask + 1, sizeof(uint32_t)));
    if (!tr.pre || !tr.word_slot || !tr.pc || !tr.tok_slot) {
        ds__tr_free(&tr);
        return ds__fail(DS_ERR_NO_MEMORY, "bpe_train: out of memory");
    }
    tr.pre->pre = pre;
    tr.pre->model = DS__TOK_BPE;
    ds__byte_map(tr.pre);
    if ((s = ds__tok_unicode(tr.pre, "bpe_train")) != DS_OK || (s = ds__tr_collect(&tr, cfg, texts, lens, n_texts)) != DS_OK ||
        (s = ds__tr_alphabet(&tr, cfg, byte_id)) != DS_OK) {
        ds__tr_free(&tr);
        return s;
    }
    ds__tr_words(&tr, byte_id);
    ds__tr_merges(&tr, cfg, vocab_size);
    if (tr.oom || tr.text.oom) s = ds__fail(DS_ERR_NO_MEMORY, "bpe_train: out of memory");
    else s = ds__tr_finish(&tr, cfg, out);
    if (cfg->progress) cfg->progress(cfg->user, "merges", 1.0);
    ds__tr_free(&tr);
    return s;
}

#endif /* DS_NO_TOKENIZER_TRAIN */
// >>model
/* A weight matrix as stored: rows of cols elements of type (ggml's ne[1] rows of ne[0]). */
typedef struct ds__mat {
    const void *data;
    ds_type type;
    int64_t rows, cols;
    const ds_gguf_tensor *t;   /* its tensor (name for observers); NULL when built otherwise */
    ds__where where;   /* the loaders map weights into host memory */
} ds__mat;

/* The weights of each attention kind and feed-forward kind. Shapes: C model width, H heads
   (Hkv key-value heads) of D; MLA and MoE shapes as in >>deepseek. */
typedef struct ds__gqa_layer {                       /* DS_ATTN_DENSE: grouped-query attention */
    ds__mat wq, wk, wv, wo;                          /* (H*D, C) (Hkv*D, C) (Hkv*D, C) (C, H*D) */
    const float *bq, *bk, *bv;                       /* qwen2 only, else NULL */
} ds__gqa_layer;

typedef struct ds__mla_layer {
    ds__mat wq;                  /* (H*Dq, C), when q_lora_rank == 0 */
    ds__mat wq_a, wq_b;          /* (Rq, C), (H*Dq, Rq) */
    const float *q_a_norm;        /* (Rq) */
    ds__mat wkv_a;               /* (R + Dr, C): the latent, then the shared RoPE key */
    const float *kv_a_norm;       /* (R) */
    ds__mat wkv_b;               /* (H*(Dn+Dv), R): per head Dn key rows then Dv value rows */
    ds__mat wk_b, wv_b;          /* split layout: (H*R, Dn) = each head's key rows transposed, (H*Dv, R) */
    ds__mat wo;                  /* (C, H*Dv) */
} ds__mla_layer;

typedef struct ds__moe_layer {
    ds__mat gate_inp;            /* (E, C) router */
    const float *exp_bias;        /* (E) selection bias, or NULL */
    ds__mat gate_exps, up_exps;  /* (E*F, C) */
    ds__mat down_exps;           /* (E*C, F) */
    ds__mat gate_sh, up_sh;      /* (S*F, C), absent when S == 0 */
    ds__mat down_sh;             /* (C, S*F) */
} ds__moe_layer;

/* DS_ATTN_SDA: the gqa weights, plus a learned gate when sda_index_dim > 0 (>>sda) */
typedef struct ds__sda_layer {
    ds__mat gate_q, gate_k;      /* (Hi*Di, C), (Di, C) indexer query and key projections */
    const float *gate_w;          /* (Hi) indexer head weights */
} ds__sda_layer;

/* DS_FFN_DENSE: SwiGLU */
typedef struct ds__ffn_layer {
    ds__mat gate, up, down;      /* (F, C), (F, C), (C, F) */
} ds__ffn_layer;

/* One layer as the forward walks it: norms, then the weights of the kinds that
   ds_model_config.layers[il] names (the other kinds' weights stay zero). A new kind is one
   member here, one loader case and one case in ds__layer_forward. */
typedef struct ds__layer {
    const float *attn_norm, *ffn_norm;              /* (C) */
    ds__gqa_layer gqa;                               /* DS_ATTN_DENSE and DS_ATTN_SDA */
    ds__mla_layer mla;                               /* DS_ATTN_MLA */
    ds__sda_layer sda;                               /* DS_ATTN_SDA: its gate */
    ds__ffn_layer ffn;                               /* DS_FFN_DENSE */
    ds__moe_layer moe;                               /* DS_FFN_MOE */
} ds__layer;

struct ds_model {
    ds_gguf *gguf;
    ds_tokenizer *tok;
    ds_model_config cfg;
    ds__mat tok_embd, output;                        /* (V, C) each; the same when tied */
    const float *output_norm;
    ds__layer *layers;                               /* (n_layer), kinds in cfg.layers */
    int chat;                                        /* a ds_chat_template, or -1 unknown */
    uint64_t weight_bytes;
};

/* deepseek2 (>>deepseek) */
static ds_status ds__deepseek2_read_config(const ds_gguf *g, ds_model_config *c);
#if !defined(DS_NO_DEEPSEEK2)
static ds_status ds__deepseek2_load_layers(ds_model *m);
#endif /* DS_NO_DEEPSEEK2 */
/* SDA (>>sda): the <arch>.attention.sda.* keys, a layer's gate tensors */
static ds_status ds__sda_read_config(const ds_gguf *g, ds_model_config *c);
static ds_status ds__sda_load_layer(ds_model *m, int il, ds__layer *L);

/* <arch>.<key> as a positive int; absent keys keep *out when optional */
static ds_status ds__model_int_key(const ds_gguf *g, const char *arch, const char *key, int optional, int *out) {
    char name[128];
    uint32_t v;
    ds_status s;
    snprintf(name, sizeof name, "%s.%s", arch, key);
    if (!ds_gguf_find(g, name)) return optional ? DS_OK : ds__fail(DS_ERR_FORMAT, "model: key '%s' is missing", name);
    s = ds_gguf_get_u32(g, name, &v);
    if (s != DS_OK || v == 0 || v > (1u << 24)) return ds__fail(DS_ERR_FORMAT, "model: key '%s' is not an integer in [1, 2^24]", name);
    *out = (int)v;
    return DS_OK;
}

static ds_status ds__model_float_key(const ds_gguf *g, const char *arch, const char *key, float *out) {
    char name[128];
    float v;
    ds_status s;
    snprintf(name, sizeof name, "%s.%s", arch, key);
    if (!ds_gguf_find(g, name)) return DS_OK;
    s = ds_gguf_get_f32(g, name, &v);
    if (s != DS_OK || !(v > 0) || v > 1e12f) return ds__fail(DS_ERR_FORMAT, "model: key '%s' is not a positive float", name);
    *out = v;
    return DS_OK;
}

static ds_status ds__model_read_config(const ds_gguf *g, ds_model_config *c) {
    ds_str arch;
    ds_status s;
    int key_len = 0, val_len = 0;
    memset(c, 0, sizeof *c);
    if (ds_gguf_get_str(g, "general.architecture", &arch) != DS_OK) return ds__fail(DS_ERR_FORMAT, "model: general.architecture is missing");
    if (arch.len == 9 && !memcmp(arch.ptr, "deepseek2", 9)) return ds__deepseek2_read_config(g, c);
    if (!((arch.len == 5 && !memcmp(arch.ptr, "llama", 5)) || (arch.len == 5 && !memcmp(arch.ptr, "qwen2", 5))))
        return ds__fail(DS_ERR_UNSUPPORTED, "model: architecture '%.*s' is not supported (llama, qwen2, deepseek2)", (int)DS__MIN(arch.len, 64), arch.ptr);
    memcpy(c->arch, arch.ptr, arch.len);
    c->norm_eps = 1e-5f;
    c->rope_base = 10000.0f;
    c->n_ctx = 2048;
    if ((s = ds__model_int_key(g, c->arch, "context_length", 1, &c->n_ctx)) != DS_OK) return s;
    if ((s = ds__model_int_key(g, c->arch, "embedding_length", 0, &c->n_embd)) != DS_OK) return s;
    if ((s = ds__model_int_key(g, c->arch, "block_count", 0, &c->n_layer)) != DS_OK) return s;
    if ((s = ds__model_int_key(g, c->arch, "feed_forward_length", 0, &c->n_ff)) != DS_OK) return s;
    if ((s = ds__model_int_key(g, c->arch, "attention.head_count", 0, &c->n_head)) != DS_OK) return s;
    c->n_head_kv = c->n_head;
    if ((s = ds__model_int_key(g, c->arch, "attention.head_count_kv", 1, &c->n_head_kv)) != DS_OK) return s;
    if ((s = ds__model_int_key(g, c->arch, "attention.key_length", 1, &key_len)) != DS_OK) return s;
    if ((s = ds__model_int_key(g, c->arch, "attention.value_length", 1, &val_len)) != DS_OK) return s;
    if ((s = ds__model_float_key(g, c->arch, "attention.layer_norm_rms_epsilon", &c->norm_eps)) != DS_OK) return s;
    if ((s = ds__model_float_key(g, c->arch, "rope.freq_base", &c->rope_base)) != DS_OK) return s;
    if (c->n_layer > DS_MAX_LAYERS) return ds__fail(DS_ERR_UNSUPPORTED, "model: %d layers (at most %d)", c->n_layer, DS_MAX_LAYERS);
    if (c->n_head % c->n_head_kv) return ds__fail(DS_ERR_FORMAT, "model: %d heads do not split into %d KV heads", c->n_head, c->n_head_kv);
    if (!key_len && c->n_embd % c->n_head) return ds__fail(DS_ERR_FORMAT, "model: n_embd %d is not a multiple of %d heads", c->n_embd, c->n_head);
    c->head_dim = key_len ? key_len : c->n_embd / c->n_head;
    if (val_len && val_len != c->head_dim) return ds__fail(DS_ERR_UNSUPPORTED, "model: value length %d differs from key length %d", val_len, c->head_dim);
    if (c->head_dim > 512 || c->head_dim % 2) return ds__fail(DS_ERR_UNSUPPORTED, "model: head size %d (even, at most 512)", c->head_dim);
    c->n_rot = c->head_dim;
    if ((s = ds__model_int_key(g, c->arch, "rope.dimension_count", 1, &c->n_rot)) != DS_OK) return s;
    if (c->n_rot > c->head_dim || c->n_rot % 2) return ds__fail(DS_ERR_FORMAT, "model: rope.dimension_count %d (even, at most the head size %d)", c->n_rot, c->head_dim);
    c->rope_neox = !strcmp(c->arch, "qwen2");
    c->qkv_bias = c->rope_neox;
    return ds__sda_read_config(g, c);
}

/* Types the matmul kernels take as weights. */
static int ds__model_weight_type_ok(ds_type t) {
    return t == DS_TYPE_F32 || t == DS_TYPE_F16 || t == DS_TYPE_BF16 || t == DS_TYPE_Q4_0 || t == DS_TYPE_Q4_1 ||
           t == DS_TYPE_Q5_0 || t == DS_TYPE_Q5_1 || t == DS_TYPE_Q8_0 || t == DS_TYPE_Q4_K || t == DS_TYPE_Q5_K ||
           t == DS_TYPE_Q6_K || t == DS_TYPE_IQ4_NL;
}

/* A (rows, cols) matrix in a kernel type, or with rows == 0 a (cols) F32 vector. Absent
   tensors are an error unless optional (then data stays NULL). */
static ds_status ds__model_tensor(ds_model *m, const char *name, int64_t rows, int64_t cols, int optional, ds__mat *out) {
    const ds_gguf_tensor *t = ds_gguf_find_tensor(m->gguf, name);
    memset(out, 0, sizeof *out);
    if (!t) return optional ? DS_OK : ds__fail(DS_ERR_FORMAT, "model: tensor '%s' is missing", name);
    if (rows == 0) {
        if (t->n_dims != 1 || t->ne[0] != cols)
            return ds__fail(DS_ERR_FORMAT, "model: tensor '%s' has shape [%lld, %lld], expected [%lld]", name, (long long)t->ne[0], (long long)t->ne[1], (long long)cols);
        if (t->type != DS_TYPE_F32) return ds__fail(DS_ERR_FORMAT, "model: tensor '%s' has type %s, expected F32", name, ds_type_name(t->type));
    } else {
        if (t->n_dims != 2 || t->ne[0] != cols || t->ne[1] != rows)
            return ds__fail(DS_ERR_FORMAT, "model: tensor '%s' has shape [%lld, %lld], expected [%lld, %lld]", name, (long long)t->ne[0], (long long)t->ne[1], (long long)cols, (long long)rows);
        if (!ds__model_weight_type_ok(t->type)) return ds__fail(DS_ERR_UNSUPPORTED, "model: tensor '%s' has type %s, which the kernels do not take", name, ds_type_name(t->type));
    }
    out->data = t->data;
    out->type = t->type;
    out->t = t;
    out->rows = rows ? rows : 1;
    out->cols = cols;
    m->weight_bytes += t->nbytes;
    return DS_OK;
}

static ds_status ds__model_vector(ds_model *m, const char *name, int64_t n, int optional, const float **out) {
    ds__mat v;
    ds_status s = ds__model_tensor(m, name, 0, n, optional, &v);
    *out = DS__CAST(const float *, v.data);
    return s;
}

static ds_status ds__model_load_layer(ds_model *m, int il, ds__layer *L) {
    const ds_model_config *c = &m->cfg;
    int64_t C = c->n_embd, QD = (int64_t)c->n_head * c->head_dim, KD = (int64_t)c->n_head_kv * c->head_dim, F = c->n_ff;
    char n[96];
    ds_status s;
#define DS__LAYER_T(field, suffix, rows, cols) \
    snprintf(n, sizeof n, "blk.%d." suffix, il); \
    if ((s = ds__model_tensor(m, n, rows, cols, 0, &L->field)) != DS_OK) return s
#define DS__LAYER_V(field, suffix, len, optional) \
    snprintf(n, sizeof n, "blk.%d." suffix, il); \
    if ((s = ds__model_vector(m, n, len, optional, &L->field)) != DS_OK) return s
    DS__LAYER_V(attn_norm, "attn_norm.weight", C, 0);
    DS__LAYER_T(gqa.wq, "attn_q.weight", QD, C);
    DS__LAYER_T(gqa.wk, "attn_k.weight", KD, C);
    DS__LAYER_T(gqa.wv, "attn_v.weight", KD, C);
    DS__LAYER_T(gqa.wo, "attn_output.weight", C, QD);
    DS__LAYER_V(gqa.bq, "attn_q.bias", QD, !c->qkv_bias);
    DS__LAYER_V(gqa.bk, "attn_k.bias", KD, !c->qkv_bias);
    DS__LAYER_V(gqa.bv, "attn_v.bias", KD, !c->qkv_bias);
    DS__LAYER_V(ffn_norm, "ffn_norm.weight", C, 0);
    DS__LAYER_T(ffn.gate, "ffn_gate.weight", F, C);
    DS__LAYER_T(ffn.up, "ffn_up.weight", F, C);
    DS__LAYER_T(ffn.down, "ffn_down.weight", C, F);
#undef DS__LAYER_T
#undef DS__LAYER_V
    return c->layers[il].attn == DS_ATTN_SDA ? ds__sda_load_layer(m, il, L) : DS_OK;
}


/* The chat template from tokenizer.chat_template (>>infer), else from the special tokens present. */
static int ds__chat_family(const char *src, size_t n);
static int ds__model_detect_chat(const ds_model *m) {
    ds_str t;
    if (ds_gguf_find(m->gguf, "tokenizer.chat_template") && ds_gguf_get_str(m->gguf, "tokenizer.chat_template", &t) == DS_OK) return ds__chat_family(t.ptr, t.len);
    if (ds_tokenizer_find(m->tok, "<|im_start|>", 12) >= 0) return DS_CHAT_CHATML;
    if (ds_tokenizer_find(m->tok, "<|start_header_id|>", 19) >= 0) return DS_CHAT_LLAMA3;
    return -1;
}

static ds_status ds__model_load_weights(ds_model *m) {
    ds_model_config *c = &m->cfg;
    const ds_gguf_tensor *emb = ds_gguf_find_tensor(m->gguf, "token_embd.weight");
    ds_status s;
    int il;
    if (!emb || emb->n_dims != 2 || emb->ne[1] < 1 || emb->ne[1] > INT_MAX)
        return ds__fail(DS_ERR_FORMAT, "model: tensor 'token_embd.weight' is missing or not a matrix");
    c->n_vocab = (int)emb->ne[1];
    if ((s = ds__model_tensor(m, "token_embd.weight", c->n_vocab, c->n_embd, 0, &m->tok_embd)) != DS_OK) return s;
    m->weight_bytes -= emb->nbytes;   /* decoding reads one row of it */
    if ((s = ds__model_vector(m, "output_norm.weight", c->n_embd, 0, &m->output_norm)) != DS_OK) return s;
    if ((s = ds__model_tensor(m, "output.weight", c->n_vocab, c->n_embd, 1, &m->output)) != DS_OK) return s;
    c->tied_output = m->output.data == NULL;
    if (c->tied_output) {
        m->output = m->tok_embd;
        m->weight_bytes += emb->nbytes;
    }
    m->layers = DS__CAST(ds__layer *, ds__calloc((size_t)c->n_layer, sizeof *m->layers));
    if (!m->layers) return ds__fail(DS_ERR_NO_MEMORY, "model: out of memory");
#if !defined(DS_NO_DEEPSEEK2)
    if (!strcmp(c->arch, "deepseek2")) return ds__deepseek2_load_layers(m);
#else
    if (!strcmp(c->arch, "deepseek2")) return ds__fail(DS_ERR_UNSUPPORTED, "model: deepseek2 was left out of this build (DS_NO_DEEPSEEK2)");
#endif
    for (il = 0; il < c->n_layer; il++) {   /* attn: dense, or SDA where the file says */
        c->layers[il].ffn = DS_FFN_DENSE;
        if ((s = ds__model_load_layer(m, il, &m->layers[il])) != DS_OK) return s;
    }
    return DS_OK;
}

/* path, or else the image data[0, size) */
static ds_status ds__model_load(const char *path, const void *data, size_t size, const ds_load_config *p, ds_model **out) {
    ds_model *m;
    ds_status s;
    if ((!path && !data) || !out) return ds__fail(DS_ERR_INVALID_ARG, "model: NULL argument");
    *out = NULL;
    m = DS__CAST(ds_model *, ds__calloc(1, sizeof *m));
    if (!m) return ds__fail(DS_ERR_NO_MEMORY, "model: out of memory");
    s = path ? ds_gguf_open(path, &m->gguf) : ds_gguf_open_memory(data, size, &m->gguf);
    if (s == DS_OK && !(p && p->no_checksum)) s = ds_gguf_verify_checksum(m->gguf, NULL);
    if (s == DS_OK && (s = ds__model_read_config(m->gguf, &m->cfg)) == DS_OK && (s = ds__model_load_weights(m)) == DS_OK &&
        (s = ds_tokenizer_from_gguf(m->gguf, &m->tok)) == DS_OK) {
        if (ds_tokenizer_n_vocab(m->tok) > m->cfg.n_vocab)
            s = ds__fail(DS_ERR_FORMAT, "model: the tokenizer has %d tokens, the embedding %d rows", ds_tokenizer_n_vocab(m->tok), m->cfg.n_vocab);
    }
    if (s != DS_OK) {
        ds_model_free(m);
        return s;
    }
    m->chat = ds__model_detect_chat(m);
    *out = m;
    return DS_OK;
}

DS_API ds_status ds_model_load(const char *path, const ds_load_config *p, ds_model **out) { return ds__model_load(path, NULL, 0, p, out); }
DS_API ds_status ds_model_load_memory(const void *data, size_t size, const ds_load_config *p, ds_model **out) { return ds__model_load(NULL, data, size, p, out); }

DS_API void ds_model_free(ds_model *m) {
    if (!m) return;
    ds_tokenizer_free(m->tok);
    ds_gguf_free(m->gguf);
    ds_free(m->layers);
    ds_free(m);
}

DS_API const ds_model_config *ds_model_get_config(const ds_model *m) { return m ? &m->cfg : NULL; }
DS_API const ds_tokenizer *ds_model_tokenizer(const ds_model *m) { return m ? m->tok : NULL; }
DS_API uint64_t ds_model_weight_bytes(const ds_model *m) { return m ? m->weight_bytes : 0; }

// >>deepseek
/* ---- DeepSeek-V2/V3 layers: Multi-head Latent Attention and DeepSeekMoE ---------------------
   Shapes: C model width, H heads, Dn / Dr the no-RoPE / RoPE parts of a query-key head
   (Dq = Dn + Dr), Dv the value head, R = kv_lora_rank, Rq = q_lora_rank, E routed experts,
   K = n_expert_used, F = n_ff_expert, S shared experts. */

#if !defined(DS_NO_DEEPSEEK2)
static const void *ds__mat_row(const ds__mat *m, int64_t r) {
    return DS__CAST(const uint8_t *, m->data) + (size_t)r * ds__row_bytes(m->type, m->cols);
}

/* y (T, n) = x (T, cols) @ rows [r0, r0 + n) of m, transposed */
static void ds__mat_mul(const ds__ops *o, ds_pool *pool, float *y, const float *x, int T, const ds__mat *m, int64_t r0, int n, void *ws) {
    ds__matmul(o, pool, y, x, T, ds__mat_row(m, r0), m->type, n, (int)m->cols, ws);
}

/* y (cols) = rows [r0, r0 + n) of m, transposed, times x (n): sum_i x_i row_i. row: cols floats. */
static void ds__mat_mul_t(const ds__ops *o, const ds__mat *m, int64_t r0, int n, const float *x, float *y, float *row) {
    int i, C = (int)m->cols;
    memset(y, 0, (size_t)C * sizeof *y);
    for (i = 0; i < n; i++) {
        if (m->type == DS_TYPE_F32) {
            o->axpy(y, x[i], DS__CAST(const float *, ds__mat_row(m, r0 + i)), C);
        } else {
            ds__dequantize_row(m->type, DS__CAST(const uint8_t *, ds__mat_row(m, r0 + i)), row, C);
            o->axpy(y, x[i], row, C);
        }
    }
}

#endif /* DS_NO_DEEPSEEK2 */
/* ---- shapes and cache ------------------------------------------------------------------------ */
static int ds__mla_dq(const ds_model_config *c) { return c->qk_nope_dim + c->qk_rope_dim; }
/* floats per token and MLA layer in the compressed cache: the normed latent and the RoPE key */
static int ds__mla_cache_row(const ds_model_config *c) { return c->kv_lora_rank + c->qk_rope_dim; }

#if !defined(DS_NO_DEEPSEEK2)
/* softmax scale of MLA scores: YaRN's magnitude correction m = 1 + log_mul * ln(factor),
   squared, over sqrt(Dq) (log_mul as deepseek2 files store it: 0.1 * mscale_all_dim) */
static float ds__mla_scale(const ds_model_config *c) {
    float ms = 1.0f;
    if (c->rope_yarn_factor > 1.0f) ms = 1.0f + c->rope_yarn_log_mul * logf(c->rope_yarn_factor);
    return ms * ms / sqrtf((float)ds__mla_dq(c));
}

#endif /* DS_NO_DEEPSEEK2 */
DS_API size_t ds_model_kv_bytes_per_token(const ds_model_config *c, size_t elem_size) {
    size_t n = 0;
    int i, hd;
    if (!c) return 0;
    hd = c->head_dim ? c->head_dim : (c->n_head ? c->n_embd / c->n_head : 0);
    for (i = 0; i < c->n_layer && i < DS_MAX_LAYERS; i++) {
        if (c->layers[i].attn == DS_ATTN_MLA) n += (size_t)ds__mla_cache_row(c);
        else n += 2 * (size_t)(c->n_head_kv ? c->n_head_kv : c->n_head) * (size_t)hd;
        if (c->layers[i].attn == DS_ATTN_SDA && c->sda_index_heads > 0) n += (size_t)DS__MAX(c->sda_index_dim, 0);
    }
    return n * elem_size;
}

#if !defined(DS_NO_DEEPSEEK2)
/* ---- scratch --------------------------------------------------------------------------------- */
/* what one attention task needs to itself */
typedef struct ds__mla_slot {
    float *p;        /* (n_ctx) scores */
    float *vec;      /* (4 * max(R, C, Dn, Dv, F)) */
    void *ws;        /* matmul activation buffer for one row */
} ds__mla_slot;

/* Buffers of one forward call of up to T tokens over up to n_ctx cached positions. */
typedef struct ds__dsk_scratch {
    float *q;        /* (T, H*Dq) */
    float *qa;       /* (T, max(Rq, R + Dr)) */
    float *att;      /* (T, H*Dv) */
    float *lat;      /* (n_ctx, R) latents gathered for the naive path */
    float *kv;       /* (n_ctx, H*(Dn+Dv)) decompressed keys and values (naive path) */
    float *vec;      /* (4 * max(R, C, Dn, Dv, F)) */
    float *logits;   /* (T, E) router */
    float *gw;       /* (T, K) routing weights */
    int *gi;         /* (T, K) chosen experts */
    int *order;      /* (T*K) token slots grouped by expert */
    int *count;      /* (E + 1) */
    float *xg;       /* (T, C) gathered rows */
    float *h1, *h2;  /* (T, max(F*max(S,1), n_ff)) */
    float *yg;       /* (T, C) */
    void *ws;        /* matmul activation buffer */
    ds__mla_slot *slots;   /* (n_slots) per attention task */
    int n_slots;
    ds__ops ops;           /* what the layers run on (the CPU backend unless the session says) */
    void *mem, *slot_mem;
} ds__dsk_scratch;

static size_t ds__dsk_ws_bytes(int T, int K) {
    static const ds_type ts[] = {DS_TYPE_F16, DS_TYPE_BF16, DS_TYPE_Q4_0, DS_TYPE_Q4_1, DS_TYPE_Q8_0, DS_TYPE_Q4_K, DS_TYPE_Q6_K};
    size_t i, b = 0, k = ((size_t)K + 255) / 256 * 256;
    for (i = 0; i < sizeof ts / sizeof ts[0]; i++) b = DS__MAX(b, ds__matmul_wsize(ts[i], T, (int)k));
    return b;
}

static ds_status ds__dsk_scratch_alloc(const ds_model_config *c, int T, int n_ctx, int naive, int n_slots, ds__dsk_scratch *s) {
    int H = c->n_head, Dq = ds__mla_dq(c), Dv = c->v_head_dim, R = c->kv_lora_rank, Dr = c->qk_rope_dim;
    int E = DS__MAX(c->n_expert, 1), K = DS__MAX(c->n_expert_used, 1), G = DS__MAX(c->n_expert_groups, 1);
    int F = DS__MAX(c->n_ff, c->n_ff_expert * DS__MAX(c->n_expert_shared, 1));
    int wide = DS__MAX(DS__MAX(DS__MAX(R, c->n_embd), DS__MAX(DS__MAX(Dq, Dv), F)), E + G);
    int widest = DS__MAX(DS__MAX(wide, H * Dq), DS__MAX(H * Dv, R + Dr));
    size_t nf[16], off = 0, total;
    float *f;
    int i;
    memset(s, 0, sizeof *s);
    ds__ops_init(&s->ops, DS_BACKEND_CPU);
    nf[0] = (size_t)T * H * Dq;                                     /* q */
    nf[1] = (size_t)T * DS__MAX(c->q_lora_rank, R + Dr);            /* qa */
    nf[2] = (size_t)T * H * Dv;                                     /* att */
    nf[3] = naive ? (size_t)n_ctx * R : 0;                          /* lat */
    nf[4] = naive ? (size_t)n_ctx * H * (c->qk_nope_dim + Dv) : 0;  /* kv */
    nf[5] = 0;                                                      /* (scores: in the slots) */
    nf[6] = 4 * (size_t)wide;                                       /* vec */
    nf[7] = (size_t)T * E;                                          /* logits */
    nf[8] = nf[9] = nf[10] = (size_t)T * K;                         /* gw, gi, order */
    nf[11] = (size_t)E + 1;                                         /* count */
    nf[12] = (size_t)T * c->n_embd;                                 /* xg */
    nf[13] = nf[14] = (size_t)T * F;                                /* h1, h2 */
    nf[15] = (size_t)T * c->n_embd;                                 /* yg */
    for (i = 0; i < 16; i++) off += (nf[i] + 15) / 16 * 16;
    total = off * sizeof(float) + ds__dsk_ws_bytes(T, widest) + 64;
    s->mem = ds_alloc(total);
    if (!s->mem) return ds__fail(DS_ERR_NO_MEMORY, "deepseek2: out of memory for %zu bytes of scratch", total);
    f = DS__CAST(float *, s->mem);
    off = 0;
#define DS__TAKE(ptr, T_, i) (ptr = DS__CAST(T_ *, (void *)(f + off)), off += (nf[i] + 15) / 16 * 16)
    DS__TAKE(s->q, float, 0);
    DS__TAKE(s->qa, float, 1);
    DS__TAKE(s->att, float, 2);
    DS__TAKE(s->lat, float, 3);
    DS__TAKE(s->kv, float, 4);
    DS__TAKE(s->vec, float, 6);
    DS__TAKE(s->logits, float, 7);
    DS__TAKE(s->gw, float, 8);
    DS__TAKE(s->gi, int, 9);
    DS__TAKE(s->order, int, 10);
    DS__TAKE(s->count, int, 11);
    DS__TAKE(s->xg, float, 12);
    DS__TAKE(s->h1, float, 13);
    DS__TAKE(s->h2, float, 14);
    DS__TAKE(s->yg, float, 15);
#undef DS__TAKE
    s->ws = DS__CAST(void *, DS__CAST(uint8_t *, s->mem) + DS__A64(off * sizeof(float)));
    {   /* slots: scores, vectors and a one-row matmul buffer each */
        size_t fl = ((size_t)n_ctx + 15) / 16 * 16 + (nf[6] + 15) / 16 * 16, each = DS__A64(fl * sizeof(float)) + DS__A64(ds__dsk_ws_bytes(1, widest));
        uint8_t *b;
        s->n_slots = DS__MAX(n_slots, 1);
        s->slot_mem = ds_alloc((size_t)s->n_slots * (each + sizeof(ds__mla_slot)));
        if (!s->slot_mem) return ds__fail(DS_ERR_NO_MEMORY, "deepseek2: out of memory for attention scratch");
        b = DS__CAST(uint8_t *, s->slot_mem);
        s->slots = DS__CAST(ds__mla_slot *, (void *)(b + (size_t)s->n_slots * each));
        for (i = 0; i < s->n_slots; i++) {
            s->slots[i].p = DS__CAST(float *, (void *)(b + (size_t)i * each));
            s->slots[i].vec = s->slots[i].p + ((size_t)n_ctx + 15) / 16 * 16;
            s->slots[i].ws = b + (size_t)i * each + DS__A64(fl * sizeof(float));
        }
    }
    return DS_OK;
}

static void ds__dsk_scratch_free(ds__dsk_scratch *s) {
    ds_free(s->mem);
    ds_free(s->slot_mem);
    s->mem = s->slot_mem = NULL;
}

/* ---- MLA ------------------------------------------------------------------------------------- */
/* q (T, H*Dq) from the normed input: W_q x, or W_qb rmsnorm(W_qa x) */
static void ds__mla_query(ds_pool *pool, const ds_model_config *c, const ds__mla_layer *L, const float *x, int T, ds__dsk_scratch *s) {
    int t, HDq = c->n_head * ds__mla_dq(c), Rq = c->q_lora_rank;
    if (!Rq) {
        ds__mat_mul(&s->ops, pool, s->q, x, T, &L->wq, 0, HDq, s->ws);
        return;
    }
    ds__mat_mul(&s->ops, pool, s->qa, x, T, &L->wq_a, 0, Rq, s->ws);
    for (t = 0; t < T; t++) s->ops.rmsnorm(s->qa + (size_t)t * Rq, s->qa + (size_t)t * Rq, L->q_a_norm, Rq, c->norm_eps);
    ds__mat_mul(&s->ops, pool, s->q, s->qa, T, &L->wq_b, 0, HDq, s->ws);
}

/* RoPE of MLA queries and keys (n_heads heads, stride floats apart, the first Dr rotated):
   plain, or YaRN when rope_yarn_factor > 1: each pair's angle blends the interpolated angle
   (pos / factor) with the original one by a ramp over the pair index, from the pairs that turn
   more than beta_fast = 32 times over the original context (kept) to those that turn less than
   beta_slow = 1 time (interpolated). The magnitude correction goes into the softmax scale. */
static void ds__mla_rope(const ds__ops *o, const ds_model_config *c, float *x, int n_heads, int stride, int pos) {
    float cs[256], sn[256];
    int i, Dr = c->qk_rope_dim, half = DS__MIN(Dr / 2, 256);
    double lo, hi, base = c->rope_base, pi2 = 6.283185307179586;
    if (!(c->rope_yarn_factor > 1.0f)) {
        ds__rope(o, x, n_heads, stride, Dr, pos, c->rope_base, 0);
        return;
    }
    /* the pair dimension whose wavelength turns n_turns times over the original context */
    lo = floor(Dr * log(c->rope_yarn_orig_ctx / (32.0 * pi2)) / (2.0 * log(base)));
    hi = ceil(Dr * log(c->rope_yarn_orig_ctx / (1.0 * pi2)) / (2.0 * log(base)));
    lo = DS__MAX(0.0, lo);
    hi = DS__MIN(Dr - 1.0, hi);
    for (i = 0; i < half; i++) {
        double extrap = pos * pow(base, -2.0 * i / Dr), interp = extrap / c->rope_yarn_factor;
        double keep = 1.0 - DS__MIN(1.0, DS__MAX(0.0, (i - lo) / DS__MAX(0.001, hi - lo)));
        double theta = interp * (1.0 - keep) + extrap * keep;
        cs[i] = (float)cos(theta);
        sn[i] = (float)sin(theta);
    }
    o->rope(x, n_heads, stride, half, half, 0, cs, sn);
}

/* Writes the compressed cache rows of the T new tokens: rmsnorm'd latent, roped shared key. */
static void ds__mla_compress(ds_pool *pool, const ds_model_config *c, const ds__mla_layer *L, const float *x, int T, int pos0, float *cache, ds__dsk_scratch *s) {
    int t, R = c->kv_lora_rank, Dr = c->qk_rope_dim, row = R + Dr;
    ds__mat_mul(&s->ops, pool, s->qa, x, T, &L->wkv_a, 0, row, s->ws);
    for (t = 0; t < T; t++) {
        float *src = s->qa + (size_t)t * row, *dst = cache + (size_t)(pos0 + t) * row;
        s->ops.rmsnorm(dst, src, L->kv_a_norm, R, c->norm_eps);
        memcpy(dst + R, src + R, (size_t)Dr * sizeof *dst);
        ds__mla_rope(&s->ops, c, dst + R, 1, Dr, pos0 + t);
    }
}

/* key rows of head h: (Dn, R) as rows of wkv_b, or (R, Dn) transposed in wk_b */
static void ds__mla_key_absorb(const ds__ops *o, const ds_model_config *c, const ds__mla_layer *L, int h, const float *q_nope, float *q_lat, const ds__mla_slot *s) {
    int Dn = c->qk_nope_dim, Dv = c->v_head_dim, R = c->kv_lora_rank;
    if (L->wk_b.data) ds__matmul(o, NULL, q_lat, q_nope, 1, ds__mat_row(&L->wk_b, (int64_t)h * R), L->wk_b.type, R, Dn, s->ws);
    else ds__mat_mul_t(o, &L->wkv_b, (int64_t)h * (Dn + Dv), Dn, q_nope, q_lat, s->vec + 2 * DS__MAX(R, Dn));
}

static void ds__mla_value_expand(const ds__ops *o, const ds_model_config *c, const ds__mla_layer *L, int h, const float *lat, float *out, void *ws) {
    int Dn = c->qk_nope_dim, Dv = c->v_head_dim, R = c->kv_lora_rank;
    if (L->wv_b.data) ds__matmul(o, NULL, out, lat, 1, ds__mat_row(&L->wv_b, (int64_t)h * Dv), L->wv_b.type, Dv, R, ws);
    else ds__matmul(o, NULL, out, lat, 1, ds__mat_row(&L->wkv_b, (int64_t)h * (Dn + Dv) + Dn), L->wkv_b.type, Dv, R, ws);
}

/* Absorbed attention of one query head against n cached rows: the no-RoPE query is taken into
   latent space (q_lat = W_k^T q_nope), scores read the R + Dr cache floats of each position, and
   the latent mix is expanded by W_v once. out (Dv). */
static void ds__mla_attend_absorbed(const ds__ops *o, const ds_model_config *c, const ds__mla_layer *L, int h, const float *qh, const float *cache, int n, float *out, const ds__mla_slot *s) {
    int j, R = c->kv_lora_rank, Dn = c->qk_nope_dim, Dr = c->qk_rope_dim, row = R + Dr;
    float *q_lat = s->vec, *mix = s->vec + DS__MAX(R, Dn), scale = ds__mla_scale(c);
    ds__mla_key_absorb(o, c, L, h, qh, q_lat, s);
    for (j = 0; j < n; j++) {
        const float *cj = cache + (size_t)j * row;
        s->p[j] = scale * (o->dot(q_lat, cj, R) + o->dot(qh + Dn, cj + R, Dr));
    }
    o->softmax(s->p, n);
    memset(mix, 0, (size_t)R * sizeof *mix);
    for (j = 0; j < n; j++) o->axpy(mix, s->p[j], cache + (size_t)j * row, R);
    ds__mla_value_expand(o, c, L, h, mix, out, s->ws);
}

/* Naive path: decompress every cached position into per-head keys and values
   (kv (n, H*(Dn+Dv)), head-major like wkv_b's rows), then attend as multi-head attention. */
static void ds__mla_decompress(ds_pool *pool, const ds_model_config *c, const ds__mla_layer *L, const float *cache, int n, ds__dsk_scratch *s) {
    int j, h, R = c->kv_lora_rank, Dn = c->qk_nope_dim, Dv = c->v_head_dim, Dr = c->qk_rope_dim, H = c->n_head;
    for (j = 0; j < n; j++) memcpy(s->lat + (size_t)j * R, cache + (size_t)j * (R + Dr), (size_t)R * sizeof(float));
    if (L->wkv_b.data) {
        ds__mat_mul(&s->ops, pool, s->kv, s->lat, n, &L->wkv_b, 0, H * (Dn + Dv), s->ws);
        return;
    }
    for (j = 0; j < n; j++)
        for (h = 0; h < H; h++) {
            float *kvh = s->kv + ((size_t)j * H + h) * (Dn + Dv);
            ds__mat_mul_t(&s->ops, &L->wk_b, (int64_t)h * R, R, s->lat + (size_t)j * R, kvh, s->slots[0].vec);
            ds__mla_value_expand(&s->ops, c, L, h, s->lat + (size_t)j * R, kvh + Dn, s->slots[0].ws);
        }
}

static void ds__mla_attend_naive(const ds__ops *o, const ds_model_config *c, int h, const float *qh, const float *cache, int n, float *out, const float *kv, const ds__mla_slot *s) {
    int j, R = c->kv_lora_rank, Dn = c->qk_nope_dim, Dv = c->v_head_dim, Dr = c->qk_rope_dim, H = c->n_head;
    float scale = ds__mla_scale(c);
    for (j = 0; j < n; j++) {
        const float *kj = kv + ((size_t)j * H + h) * (Dn + Dv);
        s->p[j] = scale * (o->dot(qh, kj, Dn) + o->dot(qh + Dn, cache + (size_t)j * (R + Dr) + R, Dr));
    }
    o->softmax(s->p, n);
    memset(out, 0, (size_t)Dv * sizeof *out);
    for (j = 0; j < n; j++) o->axpy(out, s->p[j], kv + ((size_t)j * H + h) * (Dn + Dv) + Dn, Dv);
}

/* one attention task: (token, head) items i, i + n, ... of the chunk */
typedef struct ds__mla_job {
    const ds_model_config *c;
    const ds__mla_layer *L;
    const float *cache;
    int T, pos0, naive;
    ds__dsk_scratch *s;
} ds__mla_job;

static void ds__mla_attend_task(void *ctx, int i, int n) {
    const ds__mla_job *job = DS__CAST(const ds__mla_job *, ctx);
    const ds_model_config *c = job->c;
    const ds__mla_slot *slot = &job->s->slots[i];
    int item, H = c->n_head, Dq = ds__mla_dq(c), Dv = c->v_head_dim;
    for (item = i; item < job->T * H; item += n) {
        int t = item / H, h = item % H;
        const float *qh = job->s->q + ((size_t)t * H + h) * Dq;
        float *oh = job->s->att + ((size_t)t * H + h) * Dv;
        if (job->naive) ds__mla_attend_naive(&job->s->ops, c, h, qh, job->cache, job->pos0 + t + 1, oh, job->s->kv, slot);
        else ds__mla_attend_absorbed(&job->s->ops, c, job->L, h, qh, job->cache, job->pos0 + t + 1, oh, slot);
    }
}

/* out (T, C) = MLA of the normed input x (T, C) of tokens at positions pos0.. pos0+T-1.
   cache (n_ctx, R + Dr) holds positions [0, pos0) and gets the new ones. naive: decompress
   keys and values instead of absorbing W_k and W_v (same result, more memory). */
static void ds__mla_forward(ds_pool *pool, const ds_model_config *c, const ds__mla_layer *L, const float *x, int T, int pos0, float *cache, int naive, float *out, ds__dsk_scratch *s) {
    int t, H = c->n_head, Dq = ds__mla_dq(c);
    ds__mla_job job;
    ds__mla_query(pool, c, L, x, T, s);
    for (t = 0; t < T; t++) ds__mla_rope(&s->ops, c, s->q + (size_t)t * H * Dq + c->qk_nope_dim, H, Dq, pos0 + t);
    ds__mla_compress(pool, c, L, x, T, pos0, cache, s);
    if (naive) ds__mla_decompress(pool, c, L, cache, pos0 + T, s);
    job.c = c;
    job.L = L;
    job.cache = cache;
    job.T = T;
    job.pos0 = pos0;
    job.naive = naive;
    job.s = s;
    ds_pool_run(pool, ds__mla_attend_task, &job, DS__MIN(T * H, s->n_slots));
    ds__mat_mul(&s->ops, pool, out, s->att, T, &L->wo, 0, c->n_embd, s->ws);
}

/* ---- feed-forward ---------------------------------------------------------------------------- */
/* y (T, C) = W_down (silu(W_gate x) * W_up x) over hidden rows [r0, r0+F) of gate/up and the
   down matrix rows [d0, d0+C). */
static void ds__swiglu_ffn(ds_pool *pool, const ds__mat *gate, const ds__mat *up, const ds__mat *down, int64_t r0, int64_t d0, int F, int C, const float *x, int T, float *y, ds__dsk_scratch *s) {
    int t;
    ds__mat_mul(&s->ops, pool, s->h1, x, T, gate, r0, F, s->ws);
    ds__mat_mul(&s->ops, pool, s->h2, x, T, up, r0, F, s->ws);
    for (t = 0; t < T; t++) s->ops.swiglu(s->h1 + (size_t)t * F, s->h1 + (size_t)t * F, s->h2 + (size_t)t * F, F);
    ds__matmul(&s->ops, pool, y, s->h1, T, ds__mat_row(down, d0), down->type, C, F, s->ws);
}

#endif /* DS_NO_DEEPSEEK2 */
#if !defined(DS_NO_DEEPSEEK2)
/* Chooses n_expert_used experts for one token from router logits (E): probs by softmax or
   sigmoid; selection ranks probs + bias (the bias steers choice only), first keeping the
   n_groups_used groups whose two best experts score highest; weights are the chosen probs,
   optionally renormalised, times routed_scale. */
static void ds__moe_route(const ds__ops *o, const ds_model_config *c, const float *bias, float *logits, int *gi, float *gw, float *sel) {
    int E = c->n_expert, K = c->n_expert_used, G = c->n_expert_groups, e, k, g;
    float sum = 0.0f;
    if (c->gating == DS_GATING_SIGMOID) for (e = 0; e < E; e++) logits[e] = 1.0f / (1.0f + expf(-logits[e]));
    else o->softmax(logits, E);
    for (e = 0; e < E; e++) sel[e] = logits[e] + (bias ? bias[e] : 0.0f);
    if (G > 1 && c->n_groups_used > 0 && c->n_groups_used < G) {
        int per = E / G, used;
        float *gs = sel + E;
        for (g = 0; g < G; g++) {
            float b1 = -INFINITY, b2 = -INFINITY;
            for (e = g * per; e < (g + 1) * per; e++) {
                if (sel[e] > b1) { b2 = b1; b1 = sel[e]; }
                else if (sel[e] > b2) b2 = sel[e];
            }
            gs[g] = per > 1 ? b1 + b2 : b1;
        }
        for (used = 0; used < c->n_groups_used; used++) {
            int best = -1;
            for (g = 0; g < G; g++)
                if (gs[g] > -INFINITY && gs[g] < INFINITY && (best < 0 || gs[g] > gs[best])) best = g;
            gs[best] = INFINITY;   /* kept */
        }
        for (g = 0; g < G; g++)
            if (gs[g] != INFINITY)
                for (e = g * per; e < (g + 1) * per; e++) sel[e] = -INFINITY;
    }
    for (k = 0; k < K; k++) {
        int best = -1;
        for (e = 0; e < E; e++)
            if (sel[e] > -INFINITY && (best < 0 || sel[e] > sel[best])) best = e;
        if (best < 0) best = 0;
        gi[k] = best;
        gw[k] = logits[best];
        sel[best] = -INFINITY;
        sum += gw[k];
    }
    if (c->norm_topk) for (k = 0; k < K; k++) gw[k] /= DS__MAX(sum, 6.103515625e-5f);
    for (k = 0; k < K; k++) gw[k] *= c->routed_scale > 0.0f ? c->routed_scale : 1.0f;
}
#endif

#if !defined(DS_NO_DEEPSEEK2)
/* out (T, C) = shared experts + routed experts of x (T, C). Tokens are grouped by expert so
   each chosen expert runs one matmul over all its tokens. */
static void ds__moe_forward(ds_pool *pool, const ds_model_config *c, const ds__moe_layer *L, const float *x, int T, float *out, ds__dsk_scratch *s) {
    int E = c->n_expert, K = c->n_expert_used, C = c->n_embd, F = c->n_ff_expert, t, k, e, i;
    ds__mat_mul(&s->ops, pool, s->logits, x, T, &L->gate_inp, 0, E, s->ws);
    for (t = 0; t < T; t++) ds__moe_route(&s->ops, c, L->exp_bias, s->logits + (size_t)t * E, s->gi + (size_t)t * K, s->gw + (size_t)t * K, s->vec);
    if (L->gate_sh.data) ds__swiglu_ffn(pool, &L->gate_sh, &L->up_sh, &L->down_sh, 0, 0, F * c->n_expert_shared, C, x, T, out, s);
    else memset(out, 0, (size_t)T * C * sizeof *out);
    /* counting sort of the T*K (token, slot) pairs by expert */
    memset(s->count, 0, (size_t)(E + 1) * sizeof *s->count);
    for (i = 0; i < T * K; i++) s->count[s->gi[i] + 1]++;
    for (e = 0; e < E; e++) s->count[e + 1] += s->count[e];
    for (i = 0; i < T * K; i++) s->order[s->count[s->gi[i]]++] = i;
    for (e = E; e > 0; e--) s->count[e] = s->count[e - 1];
    s->count[0] = 0;
    for (e = 0; e < E; e++) {
        int n = s->count[e + 1] - s->count[e];
        const int *slots = s->order + s->count[e];
        if (!n) continue;
        for (i = 0; i < n; i++) memcpy(s->xg + (size_t)i * C, x + (size_t)(slots[i] / K) * C, (size_t)C * sizeof(float));
        ds__swiglu_ffn(pool, &L->gate_exps, &L->up_exps, &L->down_exps, (int64_t)e * F, (int64_t)e * C, F, C, s->xg, n, s->yg, s);
        for (i = 0; i < n; i++) {
            t = slots[i] / K;
            k = slots[i] % K;
            s->ops.axpy(out + (size_t)t * C, s->gw[(size_t)t * K + k], s->yg + (size_t)i * C, C);
        }
    }
}

#endif /* DS_NO_DEEPSEEK2 */
/* ---- deepseek2 GGUF metadata ----------------------------------------------------------------- */
static ds_status ds__dsk_u32(const ds_gguf *g, const char *key, int required, int *out) {
    char name[128];
    uint32_t v;
    ds_status s;
    snprintf(name, sizeof name, "deepseek2.%s", key);
    s = ds_gguf_get_u32(g, name, &v);
    if (s == DS_ERR_NOT_FOUND && !required) return DS_OK;
    if (s == DS_ERR_NOT_FOUND) return ds__fail(DS_ERR_FORMAT, "deepseek2: key '%s' is missing", name);
    if (s != DS_OK || v > (1u << 24)) return ds__fail(DS_ERR_FORMAT, "deepseek2: key '%s' is not an integer in [0, 2^24]", name);
    *out = (int)v;
    return DS_OK;
}

static ds_status ds__dsk_f32(const ds_gguf *g, const char *key, float *out) {
    char name[128];
    float v;
    ds_status s;
    snprintf(name, sizeof name, "deepseek2.%s", key);
    s = ds_gguf_get_f32(g, name, &v);
    if (s == DS_ERR_NOT_FOUND) return DS_OK;
    if (s != DS_OK || !(v >= 0.0f) || v > 1e12f) return ds__fail(DS_ERR_FORMAT, "deepseek2: key '%s' is not a float in [0, 1e12]", name);
    *out = v;
    return DS_OK;
}

/* Checks what the MLA and MoE layers need of a config; names the first impossible field. */
DS_API ds_status ds_model_config_check_deepseek(const ds_model_config *c) {
    int i, mla = 0, moe = 0;
    if (!c) return ds__fail(DS_ERR_INVALID_ARG, "deepseek: NULL config");
    for (i = 0; i < c->n_layer && i < DS_MAX_LAYERS; i++) {
        mla |= c->layers[i].attn == DS_ATTN_MLA;
        moe |= c->layers[i].ffn == DS_FFN_MOE;
    }
    if (mla) {
        if (c->kv_lora_rank <= 0 || c->qk_rope_dim <= 0 || c->qk_nope_dim <= 0 || c->v_head_dim <= 0)
            return ds__fail(DS_ERR_INVALID_ARG, "deepseek: MLA layers need kv_lora_rank, qk_nope_dim, qk_rope_dim and v_head_dim > 0 (have %d, %d, %d, %d)", c->kv_lora_rank, c->qk_nope_dim, c->qk_rope_dim, c->v_head_dim);
        if (c->qk_rope_dim % 2 || c->qk_rope_dim > 512) return ds__fail(DS_ERR_INVALID_ARG, "deepseek: qk_rope_dim = %d must be even and at most 512", c->qk_rope_dim);
        if (c->q_lora_rank < 0) return ds__fail(DS_ERR_INVALID_ARG, "deepseek: q_lora_rank = %d is negative", c->q_lora_rank);
    }
    if (moe) {
        if (c->n_expert <= 0 || c->n_expert_used <= 0 || c->n_expert_used > c->n_expert || c->n_ff_expert <= 0)
            return ds__fail(DS_ERR_INVALID_ARG, "deepseek: MoE layers need 0 < n_expert_used <= n_expert and n_ff_expert > 0 (have %d of %d, %d)", c->n_expert_used, c->n_expert, c->n_ff_expert);
        if (c->n_expert_shared < 0) return ds__fail(DS_ERR_INVALID_ARG, "deepseek: n_expert_shared = %d is negative", c->n_expert_shared);
        if (c->n_expert_groups > 1 && (c->n_expert % c->n_expert_groups || c->n_groups_used <= 0 || c->n_groups_used > c->n_expert_groups ||
                                       c->n_groups_used * (c->n_expert / c->n_expert_groups) < c->n_expert_used))
            return ds__fail(DS_ERR_INVALID_ARG, "deepseek: %d experts in %d groups, %d groups used cannot supply %d experts", c->n_expert, c->n_expert_groups, c->n_groups_used, c->n_expert_used);
        if (c->gating != DS_GATING_SOFTMAX && c->gating != DS_GATING_SIGMOID) return ds__fail(DS_ERR_INVALID_ARG, "deepseek: unknown gating %d", (int)c->gating);
    }
    return DS_OK;
}

/* The config of a deepseek2 file (llama.cpp's keys). Every layer is MLA; layers from
   leading_dense_block_count on are MoE. The split attn_k_b / attn_v_b layout stores the MLA
   head sizes in key_length_mla / value_length_mla. */
static ds_status ds__deepseek2_read_config(const ds_gguf *g, ds_model_config *c) {
    ds_status s;
    int key_len = 0, val_len = 0, key_mla = 0, val_mla = 0, lead = 0, gating = 0, norm = 0, i;
    ds_str st;
    memset(c, 0, sizeof *c);
    strcpy(c->arch, "deepseek2");
    c->norm_eps = 1e-6f;
    c->rope_base = 10000.0f;
    c->n_ctx = 4096;
    c->routed_scale = 1.0f;
#define DS__U(key, req, dst) if ((s = ds__dsk_u32(g, key, req, dst)) != DS_OK) return s
#define DS__F(key, dst) if ((s = ds__dsk_f32(g, key, dst)) != DS_OK) return s
    DS__U("context_length", 0, &c->n_ctx);
    DS__U("embedding_length", 1, &c->n_embd);
    DS__U("block_count", 1, &c->n_layer);
    DS__U("feed_forward_length", 0, &c->n_ff);
    DS__U("attention.head_count", 1, &c->n_head);
    DS__U("attention.key_length", 1, &key_len);
    DS__U("attention.value_length", 1, &val_len);
    DS__U("attention.key_length_mla", 0, &key_mla);
    DS__U("attention.value_length_mla", 0, &val_mla);
    DS__U("attention.q_lora_rank", 0, &c->q_lora_rank);
    DS__U("attention.kv_lora_rank", 1, &c->kv_lora_rank);
    DS__U("rope.dimension_count", 1, &c->qk_rope_dim);
    DS__U("leading_dense_block_count", 0, &lead);
    DS__U("expert_count", 0, &c->n_expert);
    DS__U("expert_used_count", 0, &c->n_expert_used);
    DS__U("expert_shared_count", 0, &c->n_expert_shared);
    DS__U("expert_feed_forward_length", 0, &c->n_ff_expert);
    DS__U("expert_gating_func", 0, &gating);
    DS__U("expert_group_count", 0, &c->n_expert_groups);
    DS__U("expert_group_used_count", 0, &c->n_groups_used);
    DS__U("rope.scaling.original_context_length", 0, &c->rope_yarn_orig_ctx);
    DS__F("attention.layer_norm_rms_epsilon", &c->norm_eps);
    DS__F("rope.freq_base", &c->rope_base);
    DS__F("expert_weights_scale", &c->routed_scale);
    DS__F("rope.scaling.yarn_log_multiplier", &c->rope_yarn_log_mul);
#undef DS__U
#undef DS__F
    if (ds_gguf_get_bool(g, "deepseek2.expert_weights_norm", &norm) == DS_OK) c->norm_topk = norm != 0;
    if (ds_gguf_get_str(g, "deepseek2.rope.scaling.type", &st) == DS_OK && st.len == 4 && !memcmp(st.ptr, "yarn", 4)) {
        if ((s = ds__dsk_f32(g, "rope.scaling.factor", &c->rope_yarn_factor)) != DS_OK) return s;
        if (c->rope_yarn_factor > 1.0f && c->rope_yarn_orig_ctx < 1) return ds__fail(DS_ERR_FORMAT, "deepseek2: YaRN scaling needs rope.scaling.original_context_length");
    }
    if (c->n_layer < 1 || c->n_layer > DS_MAX_LAYERS) return ds__fail(DS_ERR_UNSUPPORTED, "deepseek2: %d layers (1..%d)", c->n_layer, DS_MAX_LAYERS);
    if (c->n_embd < 1 || c->n_head < 1) return ds__fail(DS_ERR_FORMAT, "deepseek2: embedding_length and head_count must be positive");
    c->n_head_kv = c->n_head;
    c->mla_kv_b_split = key_mla && val_mla;
    c->v_head_dim = c->mla_kv_b_split ? val_mla : val_len;
    c->qk_nope_dim = (c->mla_kv_b_split ? key_mla : key_len) - c->qk_rope_dim;
    c->head_dim = c->qk_nope_dim + c->qk_rope_dim;
    c->n_rot = c->qk_rope_dim;
    if (c->mla_kv_b_split && (key_len != c->kv_lora_rank + c->qk_rope_dim || val_len != c->kv_lora_rank))
        return ds__fail(DS_ERR_FORMAT, "deepseek2: key/value lengths %d/%d do not match the split MLA layout (%d/%d)", key_len, val_len, c->kv_lora_rank + c->qk_rope_dim, c->kv_lora_rank);
    if (gating > 2) return ds__fail(DS_ERR_UNSUPPORTED, "deepseek2: expert_gating_func %d (1 softmax, 2 sigmoid)", gating);
    c->gating = gating == 2 ? DS_GATING_SIGMOID : DS_GATING_SOFTMAX;
    if (lead > c->n_layer) return ds__fail(DS_ERR_FORMAT, "deepseek2: %d leading dense layers of %d", lead, c->n_layer);
    if (c->n_expert == 0) lead = c->n_layer;
    for (i = 0; i < c->n_layer; i++) {
        c->layers[i].attn = DS_ATTN_MLA;
        c->layers[i].ffn = i < lead ? DS_FFN_DENSE : DS_FFN_MOE;
    }
    if (lead > 0 && c->n_ff < 1) return ds__fail(DS_ERR_FORMAT, "deepseek2: dense layers need feed_forward_length");
    return ds_model_config_check_deepseek(c);
}

/* The deepseek2 metadata of a config, as llama.cpp reads it. The layers must be MLA with a
   run of dense FFN layers first and MoE layers after (llama.cpp's leading_dense_block_count). */
DS_API ds_status ds_model_config_write_deepseek2(const ds_model_config *c, ds_gguf_writer *w) {
    ds_status s = DS_OK;
    int i, lead = 0, split;
    if (!c || !w) return ds__fail(DS_ERR_INVALID_ARG, "deepseek2: NULL argument");
    if ((s = ds_model_config_check_deepseek(c)) != DS_OK) return s;
    while (lead < c->n_layer && c->layers[lead].ffn == DS_FFN_DENSE) lead++;
    for (i = 0; i < c->n_layer; i++) {
        if (c->layers[i].attn != DS_ATTN_MLA) return ds__fail(DS_ERR_UNSUPPORTED, "deepseek2: layer %d: a deepseek2 file has MLA attention in every layer", i);
        if (i >= lead && c->layers[i].ffn != DS_FFN_MOE) return ds__fail(DS_ERR_UNSUPPORTED, "deepseek2: layer %d: dense FFN layers must all come before the MoE layers", i);
    }
    split = c->mla_kv_b_split;
#define DS__WU(key, v) if (s == DS_OK) s = ds_gguf_writer_set_u32(w, "deepseek2." key, (uint32_t)(v))
#define DS__WF(key, v) if (s == DS_OK) s = ds_gguf_writer_set_f32(w, "deepseek2." key, (float)(v))
    if (s == DS_OK) s = ds_gguf_writer_set_str(w, "general.architecture", "deepseek2");
    DS__WU("context_length", c->n_ctx ? c->n_ctx : 4096);
    DS__WU("embedding_length", c->n_embd);
    DS__WU("block_count", c->n_layer);
    DS__WU("feed_forward_length", c->n_ff);
    DS__WU("attention.head_count", c->n_head);
    DS__WU("attention.head_count_kv", split ? 1 : c->n_head);
    DS__WU("attention.key_length", split ? c->kv_lora_rank + c->qk_rope_dim : ds__mla_dq(c));
    DS__WU("attention.value_length", split ? c->kv_lora_rank : c->v_head_dim);
    if (split) {
        DS__WU("attention.key_length_mla", ds__mla_dq(c));
        DS__WU("attention.value_length_mla", c->v_head_dim);
    }
    DS__WF("attention.layer_norm_rms_epsilon", c->norm_eps > 0.0f ? c->norm_eps : 1e-6f);
    DS__WF("rope.freq_base", c->rope_base > 0.0f ? c->rope_base : 10000.0f);
    DS__WU("rope.dimension_count", c->qk_rope_dim);
    DS__WU("attention.q_lora_rank", c->q_lora_rank);   /* 0 written too: llama.cpp asks for it unless n_layer is 27 */
    DS__WU("attention.kv_lora_rank", c->kv_lora_rank);
    DS__WU("leading_dense_block_count", lead);
    DS__WU("expert_count", c->n_expert);
    DS__WU("expert_used_count", c->n_expert_used);
    DS__WU("expert_shared_count", c->n_expert_shared);
    DS__WU("expert_feed_forward_length", c->n_ff_expert);
    DS__WF("expert_weights_scale", c->routed_scale > 0.0f ? c->routed_scale : 1.0f);
    if (s == DS_OK) s = ds_gguf_writer_set_bool(w, "deepseek2.expert_weights_norm", c->norm_topk != 0);
    DS__WU("expert_gating_func", c->gating == DS_GATING_SIGMOID ? 2 : 1);
    if (c->n_expert_groups > 1) {
        DS__WU("expert_group_count", c->n_expert_groups);
        DS__WU("expert_group_used_count", c->n_groups_used);
    }
    if (c->rope_yarn_factor > 1.0f) {
        if (s == DS_OK) s = ds_gguf_writer_set_str(w, "deepseek2.rope.scaling.type", "yarn");
        DS__WF("rope.scaling.factor", c->rope_yarn_factor);
        DS__WU("rope.scaling.original_context_length", c->rope_yarn_orig_ctx);
        DS__WF("rope.scaling.yarn_log_multiplier", c->rope_yarn_log_mul);
    }
#undef DS__WU
#undef DS__WF
    return s;
}

#if !defined(DS_NO_DEEPSEEK2)
/* ---- deepseek2 weights ----------------------------------------------------------------------- */
static int ds__dsk_weight_type_ok(ds_type t) { return ds__model_weight_type_ok(t); }

/* Tensor `name` of shape [ne0, ne1, ne2] (trailing 1s may be omitted in the file); a vector
   (ne1 == 1, ne2 == 1) must be F32. Absent: an error unless optional (data stays NULL). */
static ds_status ds__dsk_tensor(const ds_gguf *g, const char *name, int64_t ne0, int64_t ne1, int64_t ne2, int optional, ds__mat *out, uint64_t *bytes) {
    const ds_gguf_tensor *t = ds_gguf_find_tensor(g, name);
    memset(out, 0, sizeof *out);
    if (!t) return optional ? DS_OK : ds__fail(DS_ERR_FORMAT, "deepseek2: tensor '%s' is missing", name);
    if (t->ne[0] != ne0 || t->ne[1] != ne1 || t->ne[2] != ne2 || t->ne[3] != 1)
        return ds__fail(DS_ERR_FORMAT, "deepseek2: tensor '%s' has shape [%lld, %lld, %lld], expected [%lld, %lld, %lld]", name, (long long)t->ne[0],
                        (long long)t->ne[1], (long long)t->ne[2], (long long)ne0, (long long)ne1, (long long)ne2);
    if (ne1 == 1 && ne2 == 1 ? t->type != DS_TYPE_F32 : !ds__dsk_weight_type_ok(t->type))
        return ds__fail(DS_ERR_UNSUPPORTED, "deepseek2: tensor '%s' has type %s, which is not supported here", name, ds_type_name(t->type));
    out->data = t->data;
    out->type = t->type;
    out->rows = ne1 * ne2;   /* a 3-D tensor is ne[2] stacked matrices */
    out->cols = ne0;
    *bytes += t->nbytes;
    return DS_OK;
}

/* bytes: adds the bytes of the weights one token reads */
static ds_status ds__deepseek2_load_layer(const ds_gguf *g, const ds_model_config *c, int il, ds__layer *L, uint64_t *bytes) {
    int64_t C = c->n_embd, H = c->n_head, Dq = ds__mla_dq(c), Dn = c->qk_nope_dim, Dv = c->v_head_dim, R = c->kv_lora_rank, Dr = c->qk_rope_dim;
    int64_t Rq = c->q_lora_rank, E = c->n_expert, F = c->n_ff_expert, SF = (int64_t)c->n_expert_shared * c->n_ff_expert;
    ds__mat v;
    char n[96];
    ds_status s;
    memset(L, 0, sizeof *L);
#define DS__T(dst, suffix, a, b, d, opt) \
    snprintf(n, sizeof n, "blk.%d.%s", il, suffix); \
    if ((s = ds__dsk_tensor(g, n, a, b, d, opt, dst, bytes)) != DS_OK) return s
#define DS__V(dst, suffix, len, opt) \
    DS__T(&v, suffix, len, 1, 1, opt); \
    dst = DS__CAST(const float *, v.data)
    DS__V(L->attn_norm, "attn_norm.weight", C, 0);
    DS__V(L->ffn_norm, "ffn_norm.weight", C, 0);
    if (Rq) {
        DS__T(&L->mla.wq_a, "attn_q_a.weight", C, Rq, 1, 0);
        DS__V(L->mla.q_a_norm, "attn_q_a_norm.weight", Rq, 0);
        DS__T(&L->mla.wq_b, "attn_q_b.weight", Rq, H * Dq, 1, 0);
    } else {
        DS__T(&L->mla.wq, "attn_q.weight", C, H * Dq, 1, 0);
    }
    DS__T(&L->mla.wkv_a, "attn_kv_a_mqa.weight", C, R + Dr, 1, 0);
    DS__V(L->mla.kv_a_norm, "attn_kv_a_norm.weight", R, 0);
    if (c->mla_kv_b_split) {
        DS__T(&L->mla.wk_b, "attn_k_b.weight", Dn, R, H, 0);
        DS__T(&L->mla.wv_b, "attn_v_b.weight", R, Dv, H, 0);
    } else {
        DS__T(&L->mla.wkv_b, "attn_kv_b.weight", R, H * (Dn + Dv), 1, 0);
    }
    DS__T(&L->mla.wo, "attn_output.weight", H * Dv, C, 1, 0);
    if (c->layers[il].ffn == DS_FFN_DENSE) {
        DS__T(&L->ffn.gate, "ffn_gate.weight", C, c->n_ff, 1, 0);
        DS__T(&L->ffn.up, "ffn_up.weight", C, c->n_ff, 1, 0);
        DS__T(&L->ffn.down, "ffn_down.weight", c->n_ff, C, 1, 0);
        return DS_OK;
    }
    DS__T(&L->moe.gate_inp, "ffn_gate_inp.weight", C, E, 1, 0);
    DS__V(L->moe.exp_bias, "exp_probs_b.bias", E, 1);
    {   /* a token reads n_expert_used of the routed experts */
        uint64_t *all = bytes, routed = 0;
        bytes = &routed;
        DS__T(&L->moe.gate_exps, "ffn_gate_exps.weight", C, F, E, 0);
        DS__T(&L->moe.up_exps, "ffn_up_exps.weight", C, F, E, 0);
        DS__T(&L->moe.down_exps, "ffn_down_exps.weight", F, C, E, 0);
        bytes = all;
        *bytes += routed / (uint64_t)E * (uint64_t)c->n_expert_used;
    }
    if (SF) {
        DS__T(&L->moe.gate_sh, "ffn_gate_shexp.weight", C, SF, 1, 0);
        DS__T(&L->moe.up_sh, "ffn_up_shexp.weight", C, SF, 1, 0);
        DS__T(&L->moe.down_sh, "ffn_down_shexp.weight", SF, C, 1, 0);
    }
#undef DS__T
#undef DS__V
    return DS_OK;
}

static ds_status ds__deepseek2_load_layers(ds_model *m) {
    int il;
    ds_status s;
    for (il = 0; il < m->cfg.n_layer; il++)
        if ((s = ds__deepseek2_load_layer(m->gguf, &m->cfg, il, &m->layers[il], &m->weight_bytes)) != DS_OK) return s;
    return DS_OK;
}

/* A session's compressed cache (L, n_ctx, R + Dr) and the scratch of T-token chunks. */
static ds_status ds__deepseek2_session_alloc(const ds_model_config *c, int T, int n_ctx, int n_slots, float **cache, ds__dsk_scratch *s) {
    size_t n = (size_t)c->n_layer * n_ctx * ds__mla_cache_row(c);
    *cache = DS__CAST(float *, ds_alloc(n * sizeof(float)));
    if (!*cache) return ds__fail(DS_ERR_NO_MEMORY, "deepseek2: out of memory for a %zu-float MLA cache", n);
    return ds__dsk_scratch_alloc(c, T, n_ctx, 0, n_slots, s);
}

#endif /* DS_NO_DEEPSEEK2 */
#if !defined(DS_NO_TRAIN)
/* ---- training state of these layers (functions in >>train:deepseek) ---------------------------
   Parameters are offsets into the trainer's parameter and gradient buffers; N = B*T rows. */
typedef struct ds__mla_tparams {
    size_t wq, wq_a, q_a_norm, wq_b, wkv_a, kv_a_norm, wkv_b, wo;   /* wq when q_lora_rank == 0 */
} ds__mla_tparams;

/* saved forward values; the same layout holds their gradients in the backward */
typedef struct ds__mla_tacts {
    float *qa, *qan, *rstd_q;   /* (N, Rq) before and after its RMSNorm, (N) */
    float *q;                   /* (N, H*Dq), RoPE applied to each head's last Dr */
    float *kva;                 /* (N, R + Dr): the raw latent, then the roped shared key */
    float *lat;                 /* (N, R) the raw latent, contiguous */
    float *c, *rstd_c;          /* (N, R) normed latent, (N) */
    float *kv;                  /* (N, H*(Dn+Dv)) decompressed keys and values */
    float *probs;               /* (B, H, T, T) */
    float *att;                 /* (N, H*Dv) */
} ds__mla_tacts;

typedef struct ds__moe_tparams {
    size_t gate_inp, gate_exps, up_exps, down_exps, gate_sh, up_sh, down_sh;
} ds__moe_tparams;

typedef struct ds__moe_tacts {
    float *probs;      /* (N, E) gate probabilities */
    float *w;          /* (N, K) routing weights */
    int *gi;           /* (N, K) chosen experts */
    int *order;        /* (N*K) (token, slot) pairs sorted by expert */
    int *count;        /* (E + 1) start of each expert's run in order */
    float *xg;         /* (N*K, C) inputs in expert order */
    float *g, *u, *h;  /* (N*K, F) */
    float *y;          /* (N*K, C) expert outputs, unweighted */
    float *sg, *su, *sh;   /* (N, S*F) shared experts */
    float *sel;            /* (2E + 2) routing scratch */
} ds__moe_tacts;

/* what the trainer keeps for its MLA and MoE layers */
typedef struct ds__dsk_train {
    ds__mla_tacts dmla;   /* gradient scratch, shared by the layers */
    ds__moe_tacts dmoe;
    float *cs;            /* (T, Dr) RoPE table of the MLA keys */
    float *bias;          /* (L, E) selection biases (not trained by gradients) */
    double *load;         /* (L, E) routed choices per expert in backward passes since the last bias update */
    double *seen;         /* (L, E) routed choices in forward passes since ds_trainer_expert_share */
    float dscale;         /* the loss gradient's scale in this backward (loss scaling, accumulation) */
    void *mem;
} ds__dsk_train;

struct ds__tacts;
#if !defined(DS_NO_DEEPSEEK2)
static size_t ds__dsk_tr_layer_floats(const ds_trainer *tr);
static void ds__dsk_tr_carve(struct ds__tacts *a, float **p, const ds_trainer *tr);
static ds_status ds__dsk_tr_alloc(ds_trainer *tr);
static void ds__dsk_tr_layout(ds_trainer *tr, int l, int ffn);
static void ds__dsk_tr_attn_forward(ds_trainer *tr, int l, struct ds__tacts *a, int B, int T);
static void ds__dsk_tr_ffn_forward(ds_trainer *tr, int l, struct ds__tacts *a, float *xo, int B, int T);
static void ds__dsk_tr_attn_backward(ds_trainer *tr, int l, const struct ds__tacts *a, int B, int T);
static void ds__dsk_tr_ffn_backward(ds_trainer *tr, int l, const struct ds__tacts *a, int B, int T);
static void ds__dsk_tr_after_step(ds_trainer *tr);
static ds_status ds__dsk_tr_add_bias(ds_gguf_writer *w, const ds_trainer *tr, const char *prefix);
static ds_status ds__dsk_tr_load_bias(ds_trainer *tr, const ds_gguf *g, const char *path);
static int ds__dsk_tr_read_model(const ds_gguf *g, const char *path, ds_model_config *mc, ds_status *st);
#endif /* DS_NO_DEEPSEEK2 */
#endif /* DS_NO_TRAIN */

// >>infer
/* ---- session ------------------------------------------------------------------------------- */
typedef struct ds__lora_use ds__lora_use;   /* >>lora */
#define DS__LORA_SLOTS 7   /* per layer: the dense matrices a session adds adapters to (q k v o gate up down) */
#define DS__ATTN_TILE 16     /* query tokens sharing those converted keys */

struct ds_session {
    const ds_model *m;
    ds_pool *pool;
    int own_pool;
    int n_ctx, n_batch, pos;
    int32_t *tokens;              /* (n_ctx) what the cache holds */
    uint16_t *k_cache, *v_cache;  /* (L, Hkv, n_ctx, D) f16 */
    /* activations of one chunk of up to n_batch tokens */
    float *x, *xn, *tmp;          /* (T, C) residual, normed, projection out */
    float *q, *att;               /* (T, H*D) */
    float *k, *v;                 /* (T, Hkv*D) */
    float *gate, *up;             /* (T, F) */
    float *rope_cs, *rope_sn;     /* (T, n_rot / 2) rotation of each token's position */
    void *ws;                     /* matmul workspace (activations quantized) */
    ds__ops ops;                  /* the backend's kernels, chosen at creation */
    ds_matmul_observer observer;  /* optional: sees each weight matmul's input */
    void *observer_user;
    int profile;                  /* ds_session_config.profile */
    ds_session_stats stats;
    float *attn_scratch;          /* (n_attn_tasks, attn_stride) */
    size_t attn_stride;
    int n_attn_tasks;
    float *mla_cache;             /* deepseek2: (L, n_ctx, R + Dr) compressed cache (>>deepseek) */
#if !defined(DS_NO_DEEPSEEK2)
    ds__dsk_scratch dsk;          /* deepseek2: scratch of the MLA / MoE layers */
#endif
    /* SDA layers (>>sda) */
    struct ds__sda_tree *sda_tree; /* (L) block tree of each SDA layer's gate keys */
    uint16_t *sda_keys;           /* learned gates: (L, n_ctx, Di) f16 gate keys, to rebuild a tree */
    float *sda_gq, *sda_gk;       /* (T, Hi*Di) gate queries, (T, Di) gate keys */
    void *sda_work;               /* ds__sda_attention's selections and scratch */
    int n_sda_tasks;
    /* LoRA adapters (>>lora): uses of (layer, matrix) slot k are lora[lora_at[k] .. lora_at[k + 1]) */
    ds__lora_use *lora;
    int *lora_at;                 /* (n_layer * DS__LORA_SLOTS + 1), NULL: none */
    float *lora_u;                /* (n_batch, lora_r) each token's A x */
    int lora_r;
    ds_lora_adapter **lora_src;   /* (lora_n) what ds_session_set_lora was given */
    float *lora_scales;
    int lora_n;
};
static void ds__session_lora_free(ds_session *s);
static void ds__lora_apply(ds_session *s, float *y, const float *x, int T, int k, const ds__mat *w);

/* >>sda: the SDA layers' state beside the KV cache, allocated with the session; rewinding
   rebuilds their trees from the cached gate keys */
static ds_status ds__sda_session_alloc(ds_session *s);
static void ds__sda_session_free(ds_session *s);
static void ds__sda_session_rewind(ds_session *s);

static size_t ds__session_ws_size(const ds_model *m, int T) {
    const ds_model_config *c = &m->cfg;
    size_t w = ds__matmul_wsize(m->output.type, T, c->n_embd);
    const ds__layer *L = m->layers;
    int il;
    for (il = 0; il < c->n_layer; il++, L++) {   /* MLA and MoE layers use the deepseek2 scratch's */
        if (c->layers[il].attn == DS_ATTN_SDA && L->sda.gate_q.data) {
            w = DS__MAX(w, ds__matmul_wsize(L->sda.gate_q.type, T, c->n_embd));
            w = DS__MAX(w, ds__matmul_wsize(L->sda.gate_k.type, T, c->n_embd));
        }
        if (c->layers[il].attn != DS_ATTN_MLA) {
            w = DS__MAX(w, ds__matmul_wsize(L->gqa.wq.type, T, c->n_embd));
            w = DS__MAX(w, ds__matmul_wsize(L->gqa.wk.type, T, c->n_embd));
            w = DS__MAX(w, ds__matmul_wsize(L->gqa.wv.type, T, c->n_embd));
            w = DS__MAX(w, ds__matmul_wsize(L->gqa.wo.type, T, c->n_head * c->head_dim));
        }
        if (c->layers[il].ffn == DS_FFN_DENSE) {
            w = DS__MAX(w, ds__matmul_wsize(L->ffn.gate.type, T, c->n_embd));
            w = DS__MAX(w, ds__matmul_wsize(L->ffn.up.type, T, c->n_embd));
            w = DS__MAX(w, ds__matmul_wsize(L->ffn.down.type, T, c->n_ff));
        }
    }
    return w;
}

/* one attention task's scratch: a K block transposed and a V block, in f32, and for each
   query row of a tile its f16-rounded query, its scores over the context and its output
   slots (16 for a batch, 64 for a single token: ds__attn_fold) */
static size_t ds__attn_stride(const ds_model_config *c, int n_ctx) {
    size_t G = (size_t)(c->n_head / c->n_head_kv), rows = DS__ATTN_TILE * G, D = (size_t)c->head_dim;
    return 2 * DS__ATTN_BLOCK * D + rows * (D + (size_t)n_ctx) + DS__MAX(16 * rows, 64 * G) * D;
}

/* 1 when some layer's attention is of kind k */
static int ds__has_attn(const ds_model_config *c, ds_attn_kind k) {
    int il;
    for (il = 0; il < c->n_layer; il++)
        if (c->layers[il].attn == k) return 1;
    return 0;
}

static ds_status ds__session_alloc(ds_session *s) {
    const ds_model_config *c = &s->m->cfg;
    size_t T = (size_t)s->n_batch, C = (size_t)c->n_embd, QD = (size_t)c->n_head * c->head_dim;
    size_t KD = (size_t)c->n_head_kv * c->head_dim, F = (size_t)c->n_ff;
    size_t cache = ds__has_attn(c, DS_ATTN_DENSE) || ds__has_attn(c, DS_ATTN_SDA) ? (size_t)c->n_layer * KD * (size_t)s->n_ctx : 1;
#if !defined(DS_NO_DEEPSEEK2)
    if (ds__has_attn(c, DS_ATTN_MLA)) {   /* MLA layers keep their own compressed cache */
        ds_status st;
        if ((st = ds__deepseek2_session_alloc(c, s->n_batch, s->n_ctx, 4 * ds_pool_size(s->pool), &s->mla_cache, &s->dsk)) != DS_OK) return st;
        s->dsk.ops = s->ops;
    }
#endif
    s->tokens = DS__CAST(int32_t *, ds_alloc((size_t)s->n_ctx * sizeof(int32_t)));
    /* Nothing here is zeroed: every buffer is written before it is read, and pages the context
       or the chunk never reach stay untouched, so an unused context costs no RAM. */
    s->k_cache = DS__CAST(uint16_t *, ds_alloc(cache * sizeof(uint16_t)));
    s->v_cache = DS__CAST(uint16_t *, ds_alloc(cache * sizeof(uint16_t)));
    s->x = DS__CAST(float *, ds_alloc(T * C * sizeof(float)));
    s->xn = DS__CAST(float *, ds_alloc(T * C * sizeof(float)));
    s->tmp = DS__CAST(float *, ds_alloc(T * C * sizeof(float)));
    s->q = DS__CAST(float *, ds_alloc(T * QD * sizeof(float)));
    s->att = DS__CAST(float *, ds_alloc(T * QD * sizeof(float)));
    s->k = DS__CAST(float *, ds_alloc(T * KD * sizeof(float)));
    s->v = DS__CAST(float *, ds_alloc(T * KD * sizeof(float)));
    s->gate = DS__CAST(float *, ds_alloc(T * F * sizeof(float)));
    s->up = DS__CAST(float *, ds_alloc(T * F * sizeof(float)));
    s->rope_cs = DS__CAST(float *, ds__calloc(T * (size_t)(c->n_rot / 2), sizeof(float)));
    s->rope_sn = DS__CAST(float *, ds__calloc(T * (size_t)(c->n_rot / 2), sizeof(float)));
    s->ws = ds_alloc(ds__session_ws_size(s->m, s->n_batch));
    s->n_attn_tasks = 4 * ds_pool_size(s->pool);
    s->attn_stride = ds__attn_stride(c, s->n_ctx);
    s->attn_scratch = DS__CAST(float *, ds_alloc((size_t)s->n_attn_tasks * s->attn_stride * sizeof(float)));
    if (!s->tokens || !s->k_cache || !s->v_cache || !s->x || !s->xn || !s->tmp || !s->q || !s->att || !s->k || !s->v ||
        !s->gate || !s->up || !s->rope_cs || !s->rope_sn || !s->ws || !s->attn_scratch)
        return ds__fail(DS_ERR_NO_MEMORY, "session: out of memory (n_ctx %d, n_batch %d)", s->n_ctx, s->n_batch);
    return ds__has_attn(c, DS_ATTN_SDA) ? ds__sda_session_alloc(s) : DS_OK;
}

/* the 0 fields of a session's parameters, filled: the one place their defaults live */
static void ds__session_defaults(ds_session_config *sp, const ds_model *m) {
    if (sp->n_ctx == 0) sp->n_ctx = DS__MIN(m->cfg.n_ctx, 4096);
    if (sp->n_batch == 0) sp->n_batch = 512;
    sp->n_batch = DS__MIN(sp->n_batch, sp->n_ctx);
}

DS_API ds_status ds_session_create(const ds_model *m, const ds_session_config *p, ds_session **out) {
    ds_session_config sp;
    ds_session *s;
    ds_status st;
    if (!m || !out) return ds__fail(DS_ERR_INVALID_ARG, "session: NULL argument");
    *out = NULL;
    memset(&sp, 0, sizeof sp);
    if (p) sp = *p;
    if (sp.n_ctx < 0 || sp.n_batch < 0 || sp.n_threads < 0) return ds__fail(DS_ERR_INVALID_ARG, "session: negative n_ctx, n_batch or n_threads");
    if (sp.backend != DS_BACKEND_CPU && sp.backend != DS_BACKEND_REF) return ds__fail(DS_ERR_INVALID_ARG, "session: unknown backend %d", (int)sp.backend);
    s = DS__CAST(ds_session *, ds__calloc(1, sizeof *s));
    if (!s) return ds__fail(DS_ERR_NO_MEMORY, "session: out of memory");
    s->m = m;
    ds__session_defaults(&sp, m);
    ds__ops_init(&s->ops, sp.backend);
    s->n_ctx = sp.n_ctx;
    s->n_batch = sp.n_batch;
    s->profile = sp.profile != 0;
    s->pool = sp.pool;
    if (!s->pool) {
        ds_pool_config pc;
        memset(&pc, 0, sizeof pc);
        pc.n_threads = sp.n_threads;
        if ((st = ds_pool_create(&pc, &s->pool)) != DS_OK) {
            ds_free(s);
            return st;
        }
        s->own_pool = 1;
    }
    if ((st = ds__session_alloc(s)) != DS_OK) {
        ds_session_free(s);
        return st;
    }
    *out = s;
    return DS_OK;
}

DS_API void ds_session_free(ds_session *s) {
    if (!s) return;
    if (s->own_pool) ds_pool_free(s->pool);
    ds_free(s->tokens);
    ds_free(s->k_cache);
    ds_free(s->v_cache);
    ds_free(s->x);
    ds_free(s->xn);
    ds_free(s->tmp);
    ds_free(s->q);
    ds_free(s->att);
    ds_free(s->k);
    ds_free(s->v);
    ds_free(s->gate);
    ds_free(s->up);
    ds_free(s->rope_cs);
    ds_free(s->rope_sn);
    ds_free(s->ws);
    ds_free(s->attn_scratch);
    ds_free(s->mla_cache);
#if !defined(DS_NO_DEEPSEEK2)
    ds__dsk_scratch_free(&s->dsk);
#endif
    ds__sda_session_free(s);
    ds__session_lora_free(s);
    ds_free(s);
}

DS_API int ds_session_pos(const ds_session *s) { return s ? s->pos : 0; }
DS_API int ds_session_n_ctx(const ds_session *s) { return s ? s->n_ctx : 0; }
DS_API const int32_t *ds_session_tokens(const ds_session *s) { return s ? s->tokens : NULL; }
DS_API const ds_model *ds_session_model(const ds_session *s) { return s ? s->m : NULL; }

DS_API void ds_session_set_observer(ds_session *s, ds_matmul_observer fn, void *user) {
    if (!s) return;
    s->observer = fn;
    s->observer_user = user;
}

DS_API ds_status ds_session_rewind(ds_session *s, int pos) {
    if (!s) return ds__fail(DS_ERR_INVALID_ARG, "session: NULL argument");
    if (pos < 0 || pos > s->pos) return ds__fail(DS_ERR_INVALID_ARG, "session: cannot rewind to %d (the cache holds %d tokens)", pos, s->pos);
    s->pos = pos;
    if (s->sda_tree) ds__sda_session_rewind(s);
    return DS_OK;
}

/* ---- attention ------------------------------------------------------------------------------
   Causal, grouped-query attention over the f16 cache, with llama.cpp's roundings so logits
   agree with it: queries rounded to f16 (its K.Q product runs in f16), softmax in f32, then
   the probabilities rounded to f16 before they weigh V. That rounding needs each row's final
   normaliser, so a row's scores are kept whole (O(n) per row, never O(n^2)) rather than folded
   online. A work item is one KV head and a tile of query tokens: its G = H / Hkv query heads
   and tile tokens share every K and V block converted from f16. */
typedef struct ds__attn_job {
    ds_session *s;
    int layer, T, pos0;
} ds__attn_job;

/* scores (n) -> probabilities rounded to f16, as llama.cpp's soft_max then f16 cast */
static void ds__attn_softmax_f16(const ds__ops *o, float *p, int n) {
    o->softmax(p, n);
    o->f16_round(p, n);
}

static void ds__attn_tile(const ds__attn_job *job, int hk, int t0, int t1, float *scratch) {
    const ds_session *s = job->s;
    const ds_model_config *c = &s->m->cfg;
    int D = c->head_dim, H = c->n_head, G = c->n_head / c->n_head_kv, B = DS__ATTN_BLOCK;
    const ds__ops *o = &s->ops;
    int rows = (t1 - t0) * G, kend = job->pos0 + t1, r, j0, j, t, g, d;
    /* slots of the two products (see ds__attn_fold): llama.cpp's batch and single-token paths */
    int s_kq = job->T >= 2 && D % 16 == 0 ? 16 : 64, s_pv = job->T >= 2 ? 16 : 64;
    size_t head = ((size_t)job->layer * c->n_head_kv + hk) * (size_t)s->n_ctx * D, nctx = (size_t)s->n_ctx;
    const uint16_t *kc = s->k_cache + head, *vc = s->v_cache + head;
    /* (B, D) a block as stored, (D, B) K transposed, (rows, D) queries, (rows, n_ctx) scores,
       (rows, s_pv, D) output slots */
    float *blk = scratch, *kt = blk + (size_t)B * D, *qh = kt + (size_t)B * D, *sc = qh + (size_t)rows * D, *acc = sc + (size_t)rows * nctx;
    float scale = 1.0f / sqrtf((float)D);
    for (t = t0; t < t1; t++)
        for (g = 0; g < G; g++) {
            const float *q = s->q + (size_t)t * H * D + (size_t)(hk * G + g) * D;
            r = (t - t0) * G + g;
            memcpy(qh + (size_t)r * D, q, (size_t)D * sizeof(float));
            o->f16_round(qh + (size_t)r * D, D);
        }
    for (j0 = 0; j0 < kend; j0 += B) { /* scores, a K block at a time */
        int nb = DS__MIN(B, kend - j0);
        o->f16_to_f32(blk, kc + (size_t)j0 * D, nb * D);
        for (j = 0; j < nb; j++)
            for (d = 0; d < D; d++) kt[(size_t)d * B + j] = blk[(size_t)j * D + d];
        for (t = t0; t < t1; t++) {
            int nv = DS__MIN(nb, job->pos0 + t + 1 - j0);   /* keys this token may see */
            for (g = 0; g < G && nv > 0; g++) {
                r = (t - t0) * G + g;
                o->attn_scores(sc + r * nctx + j0, qh + (size_t)r * D, kt, D, nv, scale, s_kq);
            }
        }
    }
    for (t = t0; t < t1; t++)
        for (g = 0; g < G; g++) ds__attn_softmax_f16(o, sc + ((size_t)(t - t0) * G + g) * nctx, job->pos0 + t + 1);
    for (j0 = 0; j0 < kend; j0 += B) { /* output slots, a V block at a time */
        int nb = DS__MIN(B, kend - j0);
        o->f16_to_f32(blk, vc + (size_t)j0 * D, nb * D);
        for (t = t0; t < t1; t++) {
            int nv = DS__MIN(nb, job->pos0 + t + 1 - j0);
            for (g = 0; g < G && nv > 0; g++) {
                float *a = acc + ((size_t)(t - t0) * G + g) * s_pv * D;
                r = (t - t0) * G + g;
                o->attn_pv(a, sc + r * nctx + j0, blk, D, nv, j0, s_pv);
            }
        }
    }
    for (t = t0; t < t1; t++)
        for (g = 0; g < G; g++) {
            float *out = s->att + (size_t)t * H * D + (size_t)(hk * G + g) * D;
            const float *a = acc + ((size_t)(t - t0) * G + g) * s_pv * D;
            int used = DS__MIN(s_pv, job->pos0 + t + 1);
            o->attn_pv_sum(out, a, D, s_pv, used);
        }
}

/* task i takes items i, i + n, ...: later tiles see more keys, striding evens the load */
static void ds__attn_task(void *ctx, int i, int n) {
    const ds__attn_job *job = DS__CAST(const ds__attn_job *, ctx);
    const ds_session *s = job->s;
    int n_tiles = (job->T + DS__ATTN_TILE - 1) / DS__ATTN_TILE, item;
    float *scratch = s->attn_scratch + (size_t)i * s->attn_stride;
    for (item = i; item < s->m->cfg.n_head_kv * n_tiles; item += n) {
        int hk = item % s->m->cfg.n_head_kv, tile = item / s->m->cfg.n_head_kv;
        int t0 = tile * DS__ATTN_TILE;
        ds__attn_tile(job, hk, t0, DS__MIN(job->T, t0 + DS__ATTN_TILE), scratch);
    }
}

static void ds__attention(ds_session *s, int layer, int T, int pos0) {
    ds__attn_job job;
    int items = s->m->cfg.n_head_kv * ((T + DS__ATTN_TILE - 1) / DS__ATTN_TILE);
    job.s = s;
    job.layer = layer;
    job.T = T;
    job.pos0 = pos0;
    ds_pool_run(s->pool, ds__attn_task, &job, DS__MIN(items, s->n_attn_tasks));
}

// >>sda
/* ---- SDA: sparse dynamic attention (issue #11; DESIGN.md section 8) -------------------------
   Keys are cut into blocks of B tokens. For each query block, a gate (DSA's indexer: Hi small
   heads of dimension Di, weights w_h) scores key blocks; a coarse-to-fine search over a tree of
   block summaries keeps the best k; exact attention then runs over those blocks, the sink
   blocks, and the blocks of a local window ending at the query's own block. Selection is per
   query block and shared by every head of the layer (as DSA shares one indexer per layer).

   Gate score of a node (a block, or a run of 2^l blocks) for a query block:
       score = sum_h w_h relu(qbar_h . kbar)          qbar_h: mean of the block's gate queries
                                                      kbar:   mean of the node's gate keys
   Mean pooling, not max: q . mean(k) = mean(q . k) exactly, so a node's score is its keys'
   average affinity, a parent's summary is exactly the count-weighted mean of its children
   (a tree of sums, updated in O(Di log n) per appended token with the same bits as a bulk
   build), and a partial last block is scored by what it holds. Per-dimension max pooling has
   none of these and is not an upper bound of q . k either (MoBA pools by mean too).

   Tree: level 0 holds per-block sums of gate keys, level l's node i = level l-1's nodes 2i and
   2i+1. Search for blocks [0, nc): start at the coarsest level with at most `beam` nodes in
   range, then at each level keep the best `beam` children of the survivors (the node that
   straddles nc always survives: its mean holds later keys, so it is never scored), and at
   level 0 the best k. Cost O(beam log n) node scores per query block, so O(n log n) for a
   prefill and O(log n) per decoded token; with k fixed, attention itself is O(n k B).

   Attention keeps the dense path's two passes and roundings (queries and probabilities
   rounded to f16, the slot orders of ds__attn_fold), over the selected keys only: a row's
   scores are kept for its selected keys (O(k B) per row), softmaxed, then weigh V. So with
   every block selected it gives the dense path's bits, and its sparsity changes which keys
   are read, never how a key is summed. */
#define DS__SDA_MAX_LEVELS 40
/* what only the tests or one build flavour (DS_NO_TRAIN) calls, so it may go
   unused in a build */
#if defined(__GNUC__)
#define DS__SDA_ENTRY static __attribute__((unused))
#else
#define DS__SDA_ENTRY static
#endif

typedef struct ds__sda_params {
    int block;       /* sda_block: tokens per key block (and per query block) */
    int topk;        /* sda_topk: most blocks the gate keeps per query block */
    int window;      /* sda_window: tokens before a query block always attended */
    int sink;        /* sda_sink: leading blocks always attended */
    int beam;        /* survivors per tree level (0: 4 * topk; at least topk) */
    float sparsity;  /* sda_sparsity: fraction of earlier blocks kept, (0, 1]; 1 with a large topk = dense */
} ds__sda_params;

static ds_status ds__sda_check(const ds__sda_params *p) {
    if (p->block < 1 || p->block > 4096) return ds__fail(DS_ERR_INVALID_ARG, "sda: sda_block = %d, want 1..4096", p->block);
    if (!(p->sparsity > 0.0f && p->sparsity <= 1.0f)) return ds__fail(DS_ERR_INVALID_ARG, "sda: sda_sparsity = %g, want (0, 1]", (double)p->sparsity);
    if (p->topk < 1) return ds__fail(DS_ERR_INVALID_ARG, "sda: sda_topk = %d, want >= 1", p->topk);
    if (p->window < 0) return ds__fail(DS_ERR_INVALID_ARG, "sda: sda_window = %d, want >= 0", p->window);
    if (p->sink < 0) return ds__fail(DS_ERR_INVALID_ARG, "sda: sda_sink = %d, want >= 0", p->sink);
    if (p->beam < 0) return ds__fail(DS_ERR_INVALID_ARG, "sda: beam = %d, want >= 0", p->beam);
    return DS_OK;
}

/* the indexer's shape: Hi heads of Di dims, head weights w (Hi); linear: no relu (the
   untrained gate of a dense model, whose block affinities are mostly negative: relu would tie
   them all at zero) */
typedef struct ds__sda_gate {
    int n_heads, dim, linear;
    const float *w;
} ds__sda_gate;

/* block-summary tree over one layer's gate keys: level l, node i sums the keys of blocks
   [i 2^l, (i + 1) 2^l); sum + off[l] is (n_nodes[l], dim) */
typedef struct ds__sda_tree {
    int dim, block, n_levels, n_tok, cap_tok;
    int n_nodes[DS__SDA_MAX_LEVELS];
    size_t off[DS__SDA_MAX_LEVELS];
    float *sum;
} ds__sda_tree;

static ds_status ds__sda_tree_init(ds__sda_tree *t, int dim, int block, int cap_tok) {
    size_t total = 0;
    int l;
    memset(t, 0, sizeof *t);
    if (dim < 1 || block < 1 || cap_tok < 1) return ds__fail(DS_ERR_INVALID_ARG, "sda: tree of dim %d, sda_block %d, %d tokens", dim, block, cap_tok);
    t->dim = dim;
    t->block = block;
    t->cap_tok = cap_tok;
    t->n_nodes[0] = (cap_tok + block - 1) / block;
    for (l = 0;; l++) {
        t->off[l] = total;
        total += (size_t)t->n_nodes[l] * (size_t)dim;
        if (t->n_nodes[l] == 1) break;
        t->n_nodes[l + 1] = (t->n_nodes[l] + 1) / 2;
    }
    t->n_levels = l + 1;
    t->sum = DS__CAST(float *, ds__calloc(total, sizeof(float)));
    return t->sum ? DS_OK : ds__fail(DS_ERR_NO_MEMORY, "sda: tree of %zu floats", total);
}
static void ds__sda_tree_free(ds__sda_tree *t) {
    ds_free(t->sum);
    t->sum = NULL;
}
static float *ds__sda_node(const ds__sda_tree *t, int l, int i) { return t->sum + t->off[l] + (size_t)i * t->dim; }
/* node i of level l (>= 1) = the sum of its two children (a missing right child is zero) */
static void ds__sda_pull(ds__sda_tree *t, int l, int i) {
    float *d = ds__sda_node(t, l, i);
    const float *a = ds__sda_node(t, l - 1, 2 * i), *b = 2 * i + 1 < t->n_nodes[l - 1] ? a + t->dim : NULL;
    int e;
    for (e = 0; e < t->dim; e++) d[e] = b ? a[e] + b[e] : a[e];
}
/* n more tokens' gate keys k (n, dim): level 0 adds them in token order, then the touched
   nodes above are recomputed from their children, so one call of n tokens and n calls of one
   give the same bits */
static ds_status ds__sda_tree_append(ds__sda_tree *t, const float *k, int n) {
    int j, e, l, lo, hi;
    if (n < 0 || n > t->cap_tok - t->n_tok) return ds__fail(DS_ERR_INVALID_ARG, "sda: %d gate keys past the tree's %d tokens", n, t->cap_tok);
    if (n == 0) return DS_OK;
    for (j = 0; j < n; j++) {
        float *d = ds__sda_node(t, 0, (t->n_tok + j) / t->block);
        for (e = 0; e < t->dim; e++) d[e] += k[(size_t)j * t->dim + e];
    }
    lo = t->n_tok / t->block;
    t->n_tok += n;
    hi = (t->n_tok - 1) / t->block;
    for (l = 1; l < t->n_levels; l++) {
        lo /= 2;
        hi /= 2;
        for (j = lo; j <= hi; j++) ds__sda_pull(t, l, j);
    }
    return DS_OK;
}

/* gate score of node i at level l for pooled queries qbar (Hi, Di) */
static float ds__sda_score(const ds__ops *o, const ds__sda_tree *t, const ds__sda_gate *g, const float *qbar, int l, int i) {
    long lo = (long)i * t->block << l, hi = DS__MIN(((long)i + 1) * t->block << l, (long)t->n_tok);
    const float *k = ds__sda_node(t, l, i);
    float s = 0.0f, inv = hi > lo ? 1.0f / (float)(hi - lo) : 0.0f;
    int h;
    for (h = 0; h < g->n_heads; h++) {
        float a = o->dot(qbar + (size_t)h * g->dim, k, g->dim) * inv;
        s += g->w[h] * (g->linear ? a : DS__MAX(0.0f, a));
    }
    return s;
}

typedef struct ds__sda_cand {
    float s;
    int i;
} ds__sda_cand;
/* best first; ties to the earlier block, so selections are deterministic */
static int ds__sda_cand_cmp(const void *a, const void *b) {
    const ds__sda_cand *x = DS__CAST(const ds__sda_cand *, a), *y = DS__CAST(const ds__sda_cand *, b);
    if (x->s != y->s) return x->s > y->s ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}
static int ds__sda_int_cmp(const void *a, const void *b) {
    int x = *DS__CAST(const int *, a), y = *DS__CAST(const int *, b);
    return (x > y) - (x < y);
}

/* the k best of blocks [0, nc) by scoring every one (the tests' reference); out ascending;
   work holds nc candidates */
static int ds__sda_topk_flat(const ds__ops *o, const ds__sda_tree *t, const ds__sda_gate *g, const float *qbar, int nc, int k, int *out, ds__sda_cand *work) {
    int i, n = DS__MIN(k, nc);
    for (i = 0; i < nc; i++) {
        work[i].s = ds__sda_score(o, t, g, qbar, 0, i);
        work[i].i = i;
    }
    qsort(work, (size_t)nc, sizeof *work, ds__sda_cand_cmp);
    for (i = 0; i < n; i++) out[i] = work[i].i;
    qsort(out, (size_t)n, sizeof *out, ds__sda_int_cmp);
    return n;
}

/* the k best of blocks [0, nc) by the coarse-to-fine beam (the header comment); out
   ascending; beam >= k; work holds 3 beam + 2 candidates */
static int ds__sda_topk_tree(const ds__ops *o, const ds__sda_tree *t, const ds__sda_gate *g, const float *qbar, int nc, int k, int beam, int *out, ds__sda_cand *work) {
    ds__sda_cand *cur = work, *next = work + beam + 1;
    int l = 0, n = 0, i, c;
    if (k >= nc) {
        for (i = 0; i < nc; i++) out[i] = i;
        return nc;
    }
    while (((nc - 1) >> l) + 1 > beam) l++;
    for (i = 0; i <= (nc - 1) >> l; i++, n++) {
        cur[n].i = i;
        cur[n].s = l == 0 ? ds__sda_score(o, t, g, qbar, 0, i) : 0.0f; /* levels above are expanded whole */
    }
    if (l == 0) { /* nc <= beam: the flat search */
        qsort(cur, (size_t)n, sizeof *cur, ds__sda_cand_cmp);
        n = k;
    }
    for (; l > 0; l--) {
        int m = 0, keep = l == 1 ? k : beam;
        for (i = 0; i < n; i++)
            for (c = 2 * cur[i].i; c <= 2 * cur[i].i + 1; c++) {
                if ((long)c << (l - 1) >= nc) continue;
                next[m].i = c;
                /* straddles nc: keeps later keys in its mean, so it is kept, never scored */
                next[m].s = ((long)c + 1) << (l - 1) > nc ? HUGE_VALF : ds__sda_score(o, t, g, qbar, l - 1, c);
                m++;
            }
        qsort(next, (size_t)m, sizeof *next, ds__sda_cand_cmp);
        n = DS__MIN(m, keep);
        memcpy(cur, next, (size_t)n * sizeof *cur);
    }
    for (i = 0; i < n; i++) out[i] = cur[i].i;
    qsort(out, (size_t)n, sizeof *out, ds__sda_int_cmp);
    return n;
}

/* ---- block-sparse attention over the f16 cache ---------------------------------------------- */
typedef struct ds__sda_job {
    const ds__ops *o;
    ds__sda_params p;
    const ds__sda_gate *g;
    const ds__sda_tree *tree;           /* holds the gate keys of positions [0, pos0 + T) */
    const uint16_t *k_cache, *v_cache;  /* one layer: (Hkv, n_ctx, D) f16 */
    const float *q;                     /* (T, H, D) queries at positions pos0.. */
    const float *gq;                    /* (T, Hi, Di) gate queries */
    float *out;                         /* (T, H, D) */
    int n_ctx, H, Hkv, D, T, pos0;
    int flat;                           /* 1: brute-force top-k (tests) */
    /* set by ds__sda_attention */
    int n_groups, max_sel, *sel, *n_sel;
    float *scratch;
    size_t stride;
} ds__sda_job;

/* blocks a query block of the job may read: the gate's (topk, or at sparsity 1 every block
   up to the job's last) + sink + the window's blocks + its own */
static int ds__sda_max_sel(const ds__sda_job *j) {
    const ds__sda_params *p = &j->p;
    int gate = p->sparsity >= 1.0f ? (j->pos0 + j->T + p->block - 1) / p->block : p->topk;
    return gate + p->sink + (p->window + p->block - 1) / p->block + 2;
}
/* 4 k: on tests/test_sda.c's topic-run gate keys a beam of 2 k finds 89% of the flat top-k,
   3 k 95.5%, 4 k 96.7% */
static int ds__sda_beam(const ds__sda_params *p) { return DS__MAX(p->beam ? p->beam : 4 * p->topk, p->topk); }
static int ds__sda_groups(const ds__sda_job *j) { return (j->pos0 + j->T - 1) / j->p.block - j->pos0 / j->p.block + 1; }
/* floats of one task's scratch: the attention's (ds__sda_group) or the search's (pooled gate
   queries and candidates), whichever is larger, in whole cache lines */
static size_t ds__sda_stride(const ds__sda_job *j) {
    size_t B = (size_t)j->p.block, D = (size_t)j->D, rows = (size_t)DS__MIN(j->p.block, j->T) * (size_t)(j->H / j->Hkv);
    size_t attn = 2 * DS__ATTN_BLOCK * D + rows * (D + (size_t)ds__sda_max_sel(j) * B + (j->T >= 2 ? 16 : 64) * D);
    size_t cand = (size_t)DS__MAX(3 * ds__sda_beam(&j->p) + 2, j->flat ? (j->pos0 + j->T) / j->p.block + 1 : 0);
    size_t search = (size_t)j->g->n_heads * j->g->dim + cand * (sizeof(ds__sda_cand) / sizeof(float));
    return (DS__MAX(attn, search) + 15) & ~(size_t)15;
}
/* the selections' ints, then the tasks' scratch */
static size_t ds__sda_sel_bytes(const ds__sda_job *j) { return ((size_t)ds__sda_groups(j) * (ds__sda_max_sel(j) + 1) * sizeof(int) + 63) & ~(size_t)63; }
/* bytes of ds__sda_attention's work buffer for n_tasks tasks */
static size_t ds__sda_work_bytes(const ds__sda_job *j, int n_tasks) { return ds__sda_sel_bytes(j) + (size_t)n_tasks * ds__sda_stride(j) * sizeof(float); }

/* group gi's selection: the gate's best among blocks before the window, then sink and window
   blocks, ascending and unique; the last is the group's own block */
static void ds__sda_select(ds__sda_job *j, int gi, void *work) {
    const ds__sda_params *p = &j->p;
    int B = p->block, qb = j->pos0 / B + gi, t0 = DS__MAX(j->pos0, qb * B) - j->pos0, t1 = DS__MIN(j->pos0 + j->T, (qb + 1) * B) - j->pos0;
    int Hd = j->g->n_heads * j->g->dim, wlo = DS__MAX(0, qb * B - p->window) / B, *sel = j->sel + (size_t)gi * j->max_sel, n, i, t;
    float *qbar = DS__CAST(float *, work);
    ds__sda_cand *cand = DS__CAST(ds__sda_cand *, qbar + Hd);
    int k = p->sparsity >= 1.0f ? wlo : DS__MIN(p->topk, (int)ceil((double)p->sparsity * wlo));
    for (i = 0; i < Hd; i++) qbar[i] = 0.0f;
    for (t = t0; t < t1; t++) j->o->axpy(qbar, 1.0f / (float)(t1 - t0), j->gq + (size_t)t * Hd, Hd);
    n = wlo == 0 ? 0 : j->flat ? ds__sda_topk_flat(j->o, j->tree, j->g, qbar, wlo, k, sel, cand) : ds__sda_topk_tree(j->o, j->tree, j->g, qbar, wlo, k, ds__sda_beam(p), sel, cand);
    for (i = 0; i < DS__MIN(p->sink, wlo); i++) sel[n++] = i;
    qsort(sel, (size_t)n, sizeof *sel, ds__sda_int_cmp);
    for (i = t = 0; i < n; i++)
        if (t == 0 || sel[t - 1] != sel[i]) sel[t++] = sel[i];
    for (i = wlo; i <= qb; i++) sel[t++] = i;
    j->n_sel[gi] = t;
}

/* one KV head over one query group: ds__attn_tile's passes over the selected keys, key J of
   the selection in slot J % S as key J of a dense row */
static void ds__sda_group(const ds__sda_job *j, int hk, int gi, float *scratch) {
    const ds__ops *o = j->o;
    int B = j->p.block, D = j->D, H = j->H, G = j->H / j->Hkv, qb = j->pos0 / B + gi;
    int t0 = DS__MAX(j->pos0, qb * B) - j->pos0, t1 = DS__MIN(j->pos0 + j->T, (qb + 1) * B) - j->pos0;
    int rows = (t1 - t0) * G, ns = j->n_sel[gi], si, c0, jj, r, t, g, d;
    const int *sel = j->sel + (size_t)gi * j->max_sel;
    int s_kq = j->T >= 2 && D % 16 == 0 ? 16 : 64, s_pv = j->T >= 2 ? 16 : 64;
    size_t head = (size_t)hk * j->n_ctx * D, nk = (size_t)j->max_sel * B;
    const uint16_t *kc = j->k_cache + head, *vc = j->v_cache + head;
    /* (64, D) keys or values as stored, (D, 64) K transposed, (rows, D) queries, (rows, nk)
       scores of the selected keys, (rows, s_pv, D) output slots */
    float *blk = scratch, *kt = blk + (size_t)DS__ATTN_BLOCK * D, *qh = kt + (size_t)DS__ATTN_BLOCK * D, *sc = qh + (size_t)rows * D, *acc = sc + (size_t)rows * nk;
    float scale = 1.0f / sqrtf((float)D);
    int own = (ns - 1) * B; /* selected keys before the group's own block (all whole blocks) */
    for (t = t0; t < t1; t++)
        for (g = 0; g < G; g++) {
            r = (t - t0) * G + g;
            memcpy(qh + (size_t)r * D, j->q + (size_t)t * H * D + (size_t)(hk * G + g) * D, (size_t)D * sizeof(float));
            o->f16_round(qh + (size_t)r * D, D);
        }
    for (jj = si = 0; si < ns; si++) /* scores; jj = selected keys so far */
        for (c0 = sel[si] * B; c0 < DS__MIN((sel[si] + 1) * B, j->pos0 + t1); c0 += DS__ATTN_BLOCK) {
            int nb = DS__MIN(DS__MIN(DS__ATTN_BLOCK, (sel[si] + 1) * B - c0), j->pos0 + t1 - c0), e;
            o->f16_to_f32(blk, kc + (size_t)c0 * D, nb * D);
            for (e = 0; e < nb; e++)
                for (d = 0; d < D; d++) kt[(size_t)d * DS__ATTN_BLOCK + e] = blk[(size_t)e * D + d];
            for (t = t0; t < t1; t++) {
                int nv = DS__MIN(nb, j->pos0 + t + 1 - c0);
                for (g = 0; g < G && nv > 0; g++) {
                    r = (t - t0) * G + g;
                    o->attn_scores(sc + r * nk + jj, qh + (size_t)r * D, kt, D, nv, scale, s_kq);
                }
            }
            jj += nb;
        }
    for (t = t0; t < t1; t++)
        for (g = 0; g < G; g++) ds__attn_softmax_f16(o, sc + ((size_t)(t - t0) * G + g) * nk, own + j->pos0 + t + 1 - qb * B);
    for (jj = si = 0; si < ns; si++)
        for (c0 = sel[si] * B; c0 < DS__MIN((sel[si] + 1) * B, j->pos0 + t1); c0 += DS__ATTN_BLOCK) {
            int nb = DS__MIN(DS__MIN(DS__ATTN_BLOCK, (sel[si] + 1) * B - c0), j->pos0 + t1 - c0);
            o->f16_to_f32(blk, vc + (size_t)c0 * D, nb * D);
            for (t = t0; t < t1; t++) {
                int nv = DS__MIN(nb, j->pos0 + t + 1 - c0);
                for (g = 0; g < G && nv > 0; g++) {
                    r = (t - t0) * G + g;
                    o->attn_pv(acc + (size_t)r * s_pv * D, sc + r * nk + jj, blk, D, nv, jj, s_pv);
                }
            }
            jj += nb;
        }
    for (t = t0; t < t1; t++)
        for (g = 0; g < G; g++) {
            r = (t - t0) * G + g;
            o->attn_pv_sum(j->out + (size_t)t * H * D + (size_t)(hk * G + g) * D, acc + (size_t)r * s_pv * D, D, s_pv, DS__MIN(s_pv, own + j->pos0 + t + 1 - qb * B));
        }
}

static void ds__sda_select_task(void *ctx, int i, int n) {
    ds__sda_job *j = DS__CAST(ds__sda_job *, ctx);
    int gi;
    for (gi = i; gi < j->n_groups; gi += n) ds__sda_select(j, gi, j->scratch + (size_t)i * j->stride);
}
static void ds__sda_attn_task(void *ctx, int i, int n) {
    const ds__sda_job *j = DS__CAST(const ds__sda_job *, ctx);
    int item;
    for (item = i; item < j->Hkv * j->n_groups; item += n) ds__sda_group(j, item % j->Hkv, item / j->Hkv, j->scratch + (size_t)i * j->stride);
}

/* SDA over T queries at pos0.. (prefill: T > 1; decode: T = 1), their keys and values already
   in the cache and their gate keys in the tree. work: ds__sda_work_bytes(j, n_tasks) bytes. */
static ds_status ds__sda_attention(ds__sda_job *j, ds_pool *pool, void *work, int n_tasks) {
    ds_status st = ds__sda_check(&j->p);
    if (st != DS_OK) return st;
    if (j->T < 1 || j->pos0 < 0 || j->pos0 + j->T > j->n_ctx || j->Hkv < 1 || j->H % j->Hkv || j->tree->n_tok < j->pos0 + j->T || j->tree->block != j->p.block || j->g->dim != j->tree->dim)
        return ds__fail(DS_ERR_INVALID_ARG, "sda: %d queries at %d over a cache of %d and a tree of %d tokens", j->T, j->pos0, j->n_ctx, j->tree->n_tok);
    j->n_groups = ds__sda_groups(j);
    j->max_sel = ds__sda_max_sel(j);
    j->stride = ds__sda_stride(j);
    j->sel = DS__CAST(int *, work);
    j->n_sel = j->sel + (size_t)j->n_groups * j->max_sel;
    j->scratch = DS__CAST(float *, (void *)((char *)work + ds__sda_sel_bytes(j)));
    ds_pool_run(pool, ds__sda_select_task, j, DS__MIN(n_tasks, j->n_groups));
    ds_pool_run(pool, ds__sda_attn_task, j, DS__MIN(n_tasks, j->Hkv * j->n_groups));
    return DS_OK;
}

/* ---- SDA as a model's attention kind -------------------------------------------------------
   An SDA layer has a dense layer's weights and KV cache; only its attention reads fewer keys.
   Its gate is either learned (sda_index_heads Hi heads of sda_index_dim Di dims: per token a
   query (Hi, Di) and a key (Di) projected from the normed input, head weights w, the scores'
   relu as in DSA) or, without gate tensors, the layer's own: the gate key of a token is its
   Hkv cached keys side by side (Di = Hkv D) and the gate query of a query block is, per KV
   head, the sum of that head's G queries, with no relu. So an untrained gate scores a block by
   the mean q . k of all heads over it (MoBA's mean-pooled keys, one selection for the layer),
   and a dense model runs as SDA as it is. Gate keys are read back as cached (f16), so a tree
   rebuilt on rewind has the bits of one grown token by token.

   GGUF (llama and qwen2 files): <arch>.attention.sda.layers (bool array, one per layer: 1 =
   SDA), .block_size, .top_k, .window (tokens), .sink (blocks), .sparsity (f32), and for a
   learned gate .index_head_count and .index_key_length, with tensors blk.N.sda_gate_q.weight
   (Hi*Di, C), blk.N.sda_gate_k.weight (Di, C), blk.N.sda_gate_w.weight (Hi, F32). */
#define DS__SDA_KEY "attention.sda."

/* the ds__sda_params of a model config, defaults filled in */
static void ds__sda_params_of(const ds_model_config *c, ds__sda_params *p) {
    memset(p, 0, sizeof *p);
    p->block = c->sda_block ? c->sda_block : 64;
    p->topk = c->sda_topk ? c->sda_topk : 16;
    p->window = c->sda_window < 0 ? 0 : c->sda_window ? c->sda_window : 64;
    p->sink = c->sda_sink < 0 ? 0 : c->sda_sink ? c->sda_sink : 1;
    p->sparsity = c->sda_sparsity != 0.0f ? c->sda_sparsity : 0.3f;
}
static int ds__sda_learned(const ds_model_config *c) { return c->sda_index_heads > 0 && c->sda_index_dim > 0; }
/* the gate's heads and dims: the learned indexer's, or the layer's own keys side by side */
static void ds__sda_gate_dims(const ds_model_config *c, int *Hi, int *Di) {
    *Hi = ds__sda_learned(c) ? c->sda_index_heads : 1;
    *Di = ds__sda_learned(c) ? c->sda_index_dim : c->n_head_kv * c->head_dim;
}

/* Checks the SDA settings of a config with SDA layers, naming the key. */
static ds_status ds__sda_config_check(const ds_model_config *c) {
    ds__sda_params p;
    ds__sda_params_of(c, &p);
    if (c->sda_window < -1 || c->sda_sink < -1) return ds__fail(DS_ERR_INVALID_ARG, "sda: %s = %d, want >= -1 (-1: none)", c->sda_window < -1 ? "sda_window" : "sda_sink", c->sda_window < -1 ? c->sda_window : c->sda_sink);
    if (c->sda_index_heads < 0 || c->sda_index_heads > 64 || c->sda_index_dim < 0 || c->sda_index_dim > 4096 || (c->sda_index_heads > 0) != (c->sda_index_dim > 0))
        return ds__fail(DS_ERR_INVALID_ARG, "sda: sda_index_heads = %d, sda_index_dim = %d: want both 0 (no learned gate) or 1..64 and 1..4096", c->sda_index_heads, c->sda_index_dim);
    return ds__sda_check(&p);
}

/* <arch>.attention.sda.<key> as a u32 in [lo, hi] into *out (absent: kept) */
static ds_status ds__sda_u32_key(const ds_gguf *g, const char *arch, const char *key, uint32_t lo, uint32_t hi, int *out) {
    char name[128];
    uint32_t v;
    snprintf(name, sizeof name, "%s." DS__SDA_KEY "%s", arch, key);
    if (!ds_gguf_find(g, name)) return DS_OK;
    if (ds_gguf_get_u32(g, name, &v) != DS_OK || v < lo || v > hi) return ds__fail(DS_ERR_FORMAT, "model: key '%s' is not an integer in [%u, %u]", name, lo, hi);
    *out = (int)v;
    return DS_OK;
}

static ds_status ds__sda_read_config(const ds_gguf *g, ds_model_config *c) {
    char name[128];
    const ds_gguf_kv *kv;
    const uint8_t *on;
    ds_status st;
    int il, n = 0, win = -1, sink = -1;
    snprintf(name, sizeof name, "%s." DS__SDA_KEY "layers", c->arch);
    if (!(kv = ds_gguf_find(g, name))) return DS_OK;
    if (kv->type != DS_GGUF_ARRAY || (kv->arr_type != DS_GGUF_BOOL && kv->arr_type != DS_GGUF_U8) || kv->arr_len != (uint64_t)c->n_layer)
        return ds__fail(DS_ERR_FORMAT, "model: key '%s' is not a bool array of %d layers", name, c->n_layer);
    on = kv->data;
    for (il = 0; il < c->n_layer; il++) {
        if (on[il] > 1) return ds__fail(DS_ERR_FORMAT, "model: key '%s': layer %d is %u, want 0 or 1", name, il, on[il]);
        c->layers[il].attn = on[il] ? DS_ATTN_SDA : DS_ATTN_DENSE;
    }
    if ((st = ds__sda_u32_key(g, c->arch, "block_size", 1, 4096, &c->sda_block)) != DS_OK || (st = ds__sda_u32_key(g, c->arch, "top_k", 1, 1u << 24, &c->sda_topk)) != DS_OK ||
        (st = ds__sda_u32_key(g, c->arch, "window", 0, 1u << 24, &win)) != DS_OK || (st = ds__sda_u32_key(g, c->arch, "sink", 0, 1u << 24, &sink)) != DS_OK ||
        (st = ds__sda_u32_key(g, c->arch, "index_head_count", 1, 64, &c->sda_index_heads)) != DS_OK ||
        (st = ds__sda_u32_key(g, c->arch, "index_key_length", 1, 4096, &c->sda_index_dim)) != DS_OK)
        return st;
    if (win >= 0) c->sda_window = win ? win : -1;
    if (sink >= 0) c->sda_sink = sink ? sink : -1;
    snprintf(name, sizeof name, "%s." DS__SDA_KEY "sparsity", c->arch);
    if (ds_gguf_find(g, name) && (ds_gguf_get_f32(g, name, &c->sda_sparsity) != DS_OK || !(c->sda_sparsity > 0.0f && c->sda_sparsity <= 1.0f)))
        return ds__fail(DS_ERR_FORMAT, "model: key '%s' is not a number in (0, 1]", name);
    if ((c->sda_index_heads > 0) != (c->sda_index_dim > 0))
        return ds__fail(DS_ERR_FORMAT, "model: keys '%s." DS__SDA_KEY "index_head_count' and 'index_key_length' come together", c->arch);
    for (il = 0; il < c->n_layer; il++) n += c->layers[il].attn == DS_ATTN_SDA;
    return n ? ds__sda_config_check(c) : DS_OK;
}

static ds_status ds__sda_load_layer(ds_model *m, int il, ds__layer *L) {
    const ds_model_config *c = &m->cfg;
    char n[96];
    ds__mat w;
    ds_status st;
    if (!ds__sda_learned(c)) {   /* no gate: its tensors would be ignored, so say so */
        snprintf(n, sizeof n, "blk.%d.sda_gate_q.weight", il);
        if (ds_gguf_find_tensor(m->gguf, n)) return ds__fail(DS_ERR_FORMAT, "model: tensor '%s' without the keys %s." DS__SDA_KEY "index_head_count / index_key_length", n, c->arch);
        return DS_OK;
    }
    snprintf(n, sizeof n, "blk.%d.sda_gate_q.weight", il);
    if ((st = ds__model_tensor(m, n, (int64_t)c->sda_index_heads * c->sda_index_dim, c->n_embd, 0, &L->sda.gate_q)) != DS_OK) return st;
    snprintf(n, sizeof n, "blk.%d.sda_gate_k.weight", il);
    if ((st = ds__model_tensor(m, n, c->sda_index_dim, c->n_embd, 0, &L->sda.gate_k)) != DS_OK) return st;
    snprintf(n, sizeof n, "blk.%d.sda_gate_w.weight", il);
    st = ds__model_tensor(m, n, 0, c->sda_index_heads, 0, &w);
    L->sda.gate_w = DS__CAST(const float *, w.data);
    return st;
}

/* the <arch>.attention.sda.* keys of a config with SDA layers (none: nothing written) */
DS__SDA_ENTRY ds_status ds__sda_write_config(ds_gguf_writer *w, const char *arch, const ds_model_config *c) {
    char name[128];
    uint8_t on[DS_MAX_LAYERS];
    ds__sda_params p;
    ds_status st = DS_OK;
    int il, n = 0;
    for (il = 0; il < c->n_layer; il++) n += on[il] = c->layers[il].attn == DS_ATTN_SDA;
    if (!n) return DS_OK;
    ds__sda_params_of(c, &p);
#define DS__W(key, call) \
    snprintf(name, sizeof name, "%s." DS__SDA_KEY key, arch); \
    if (st == DS_OK) st = (call)
    DS__W("layers", ds_gguf_writer_set_arr(w, name, DS_GGUF_BOOL, on, (uint64_t)c->n_layer));
    DS__W("block_size", ds_gguf_writer_set_u32(w, name, (uint32_t)p.block));
    DS__W("top_k", ds_gguf_writer_set_u32(w, name, (uint32_t)p.topk));
    DS__W("window", ds_gguf_writer_set_u32(w, name, (uint32_t)p.window));
    DS__W("sink", ds_gguf_writer_set_u32(w, name, (uint32_t)p.sink));
    DS__W("sparsity", ds_gguf_writer_set_f32(w, name, p.sparsity));
    if (ds__sda_learned(c)) {
        DS__W("index_head_count", ds_gguf_writer_set_u32(w, name, (uint32_t)c->sda_index_heads));
        DS__W("index_key_length", ds_gguf_writer_set_u32(w, name, (uint32_t)c->sda_index_dim));
    }
#undef DS__W
    return st;
}

DS_API ds_status ds_model_configure(ds_model *m, const char *lines) {
    ds_model_config c, a, b;
    ds_status st;
    int il;
    if (!m || !lines) return ds__fail(DS_ERR_INVALID_ARG, "model_configure: NULL argument");
    c = m->cfg;
    if ((st = ds_model_config_parse(lines, &c, NULL, "model_configure")) != DS_OK) return st;
    a = m->cfg, b = c;   /* nothing but the attention kinds and the SDA settings may differ */
    a.sda_block = b.sda_block, a.sda_topk = b.sda_topk, a.sda_window = b.sda_window, a.sda_sink = b.sda_sink, a.sda_sparsity = b.sda_sparsity;
    for (il = 0; il < DS_MAX_LAYERS; il++) {
        int was = m->cfg.layers[il].attn, now;
        if (il >= m->cfg.n_layer) c.layers[il] = m->cfg.layers[il];   /* layers.attn names them too */
        now = c.layers[il].attn;
        if (was != now && (was == DS_ATTN_MLA || now == DS_ATTN_MLA))
            return ds__fail(DS_ERR_INVALID_ARG, "model_configure: layer %d: only dense and SDA layers of the model can change kind", il);
        a.layers[il].attn = b.layers[il].attn;
        if (now == DS_ATTN_SDA && il < m->cfg.n_layer && (!m->layers[il].gqa.wq.data || (ds__sda_learned(&c) && !m->layers[il].sda.gate_q.data)))
            return ds__fail(DS_ERR_INVALID_ARG, "model_configure: layer %d has no %s to run as SDA", il, m->layers[il].gqa.wq.data ? "learned gate" : "grouped-query weights");
    }
    if (memcmp(&a, &b, sizeof a)) return ds__fail(DS_ERR_INVALID_ARG, "model_configure: only layers.attn, layer.N.attn and sda_block, sda_topk, sda_sparsity, sda_window, sda_sink can change");
    if (ds__has_attn(&c, DS_ATTN_SDA) && (st = ds__sda_config_check(&c)) != DS_OK) return st;
    m->cfg = c;
    return DS_OK;
}

/* the job of layer il's SDA over T queries at pos0 (the session's buffers) */
static void ds__sda_session_job(ds_session *s, int il, int T, int pos0, ds__sda_gate *g, ds__sda_job *j) {
    const ds_model_config *c = &s->m->cfg;
    memset(j, 0, sizeof *j);
    ds__sda_params_of(c, &j->p);
    j->o = &s->ops;
    j->g = g;
    j->tree = s->sda_tree ? &s->sda_tree[il] : NULL;
    j->k_cache = s->k_cache + (size_t)il * c->n_head_kv * s->n_ctx * c->head_dim;
    j->v_cache = s->v_cache + (size_t)il * c->n_head_kv * s->n_ctx * c->head_dim;
    j->q = s->q;
    j->gq = s->sda_gq;
    j->out = s->att;
    j->n_ctx = s->n_ctx, j->H = c->n_head, j->Hkv = c->n_head_kv, j->D = c->head_dim, j->T = T, j->pos0 = pos0;
}

static ds_status ds__sda_session_alloc(ds_session *s) {
    const ds_model_config *c = &s->m->cfg;
    ds__sda_gate g;
    ds__sda_job j;
    size_t bytes = 0;
    int il, Hi, Di, pos0;
    ds_status st;
    if ((st = ds__sda_config_check(c)) != DS_OK) return st;
    ds__sda_gate_dims(c, &Hi, &Di);
    memset(&g, 0, sizeof g);
    g.n_heads = Hi, g.dim = Di;
    s->n_sda_tasks = 4 * ds_pool_size(s->pool);
    /* the last decode step, then a chunk at every offset in a block, first and last (at
       sparsity 1 a query block may read every block before it) */
    ds__sda_session_job(s, 0, 1, s->n_ctx - 1, &g, &j);
    bytes = ds__sda_work_bytes(&j, s->n_sda_tasks);
    for (pos0 = 0; pos0 < j.p.block; pos0++) {
        ds__sda_session_job(s, 0, s->n_batch, pos0, &g, &j);
        bytes = DS__MAX(bytes, ds__sda_work_bytes(&j, s->n_sda_tasks));
        ds__sda_session_job(s, 0, s->n_batch, DS__MAX(0, s->n_ctx - s->n_batch - pos0), &g, &j);
        bytes = DS__MAX(bytes, ds__sda_work_bytes(&j, s->n_sda_tasks));
    }
    bytes = DS__MAX(bytes, ds__sda_work_bytes(&j, s->n_sda_tasks));
    s->sda_tree = DS__CAST(ds__sda_tree *, ds__calloc((size_t)c->n_layer, sizeof(ds__sda_tree)));
    s->sda_gq = DS__CAST(float *, ds_alloc((size_t)s->n_batch * Hi * Di * sizeof(float)));
    s->sda_gk = DS__CAST(float *, ds_alloc((size_t)s->n_batch * Di * sizeof(float)));
    s->sda_work = ds_alloc(bytes);
    if (ds__sda_learned(c)) s->sda_keys = DS__CAST(uint16_t *, ds_alloc((size_t)c->n_layer * s->n_ctx * Di * sizeof(uint16_t)));
    if (!s->sda_tree || !s->sda_gq || !s->sda_gk || !s->sda_work || (ds__sda_learned(c) && !s->sda_keys))
        return ds__fail(DS_ERR_NO_MEMORY, "session: out of memory for the SDA state (n_ctx %d)", s->n_ctx);
    for (il = 0; il < c->n_layer; il++)
        if (c->layers[il].attn == DS_ATTN_SDA && (st = ds__sda_tree_init(&s->sda_tree[il], Di, j.p.block, s->n_ctx)) != DS_OK) return st;
    return DS_OK;
}

static void ds__sda_session_free(ds_session *s) {
    int il;
    if (s->sda_tree)
        for (il = 0; il < s->m->cfg.n_layer; il++) ds__sda_tree_free(&s->sda_tree[il]);
    ds_free(s->sda_tree);
    ds_free(s->sda_keys);
    ds_free(s->sda_gq);
    ds_free(s->sda_gk);
    ds_free(s->sda_work);
}

/* gk (T, Di) = layer il's gate keys of positions pos0.. as cached */
static void ds__sda_gate_keys(const ds_session *s, int il, int pos0, int T, float *gk) {
    const ds_model_config *c = &s->m->cfg;
    int Hi, Di, D = c->head_dim, t, h;
    ds__sda_gate_dims(c, &Hi, &Di);
    if (s->sda_keys) {
        s->ops.f16_to_f32(gk, s->sda_keys + ((size_t)il * s->n_ctx + (size_t)pos0) * Di, T * Di);
        return;
    }
    for (t = 0; t < T; t++)
        for (h = 0; h < c->n_head_kv; h++)
            s->ops.f16_to_f32(gk + (size_t)t * Di + (size_t)h * D, s->k_cache + (((size_t)il * c->n_head_kv + h) * s->n_ctx + (size_t)(pos0 + t)) * D, D);
}

static void ds__sda_session_rewind(ds_session *s) {
    const ds_model_config *c = &s->m->cfg;
    int il, p0, n;
    for (il = 0; il < c->n_layer; il++) {
        ds__sda_tree *t = &s->sda_tree[il];
        if (c->layers[il].attn != DS_ATTN_SDA) continue;
        memset(t->sum, 0, (t->off[t->n_levels - 1] + (size_t)t->dim) * sizeof(float));
        t->n_tok = 0;
        for (p0 = 0; p0 < s->pos; p0 += n) {
            n = DS__MIN(s->n_batch, s->pos - p0);
            ds__sda_gate_keys(s, il, p0, n, s->sda_gk);
            (void)ds__sda_tree_append(t, s->sda_gk, n);
        }
    }
}

/* ---- attention benchmark (ds_attn_bench_*) -------------------------------------------------- */
#define DS__AB_HI 4
#define DS__AB_DI 32
#define DS__AB_TOPICS 64
struct ds_attn_bench {
    ds_pool *pool;
    ds__ops ops;
    ds__sda_params p;
    ds__sda_gate g;
    ds__sda_tree tree;
    float w[DS__AB_HI];
    int H, Hkv, D, n, tasks;
    uint16_t *kc, *vc;          /* (Hkv, n, D) */
    float *q, *gq, *out;        /* (n, H, D), (n, Hi, Di), (n, H, D) */
};

static float ds__ab_rand(uint64_t *s) { /* [-1, 1) */
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return (float)((*s >> 40) * (1.0 / 8388608.0)) - 1.0f;
}

/* the topics: keys' and gate keys' (tk, tg), one run per key block; queries ask about an earlier token's */
static void ds__ab_fill(ds_attn_bench *b, float *gk) {
    float *tk = DS__CAST(float *, ds__calloc((size_t)DS__AB_TOPICS * b->D, sizeof(float))), tg[DS__AB_TOPICS][DS__AB_DI];
    float *row = DS__CAST(float *, ds__calloc((size_t)b->D, sizeof(float)));
    int *topic = DS__CAST(int *, ds__calloc((size_t)b->n, sizeof(int))), i, h, e, tp = 0, run = 0;
    uint64_t r = 0x9E3779B97F4A7C15ull;
    for (i = 0; i < DS__AB_TOPICS; i++) {
        for (e = 0; e < b->D; e++) tk[(size_t)i * b->D + e] = 2.0f * ds__ab_rand(&r);
        for (e = 0; e < DS__AB_DI; e++) tg[i][e] = ds__ab_rand(&r);
    }
    for (i = 0; i < b->n; i++) {
        if (i % b->p.block == 0 && run-- <= 0) tp = (int)((ds__ab_rand(&r) + 1.0f) * 0.5f * DS__AB_TOPICS) % DS__AB_TOPICS, run = (int)((ds__ab_rand(&r) + 1.0f) * 8.0f);
        topic[i] = tp;
        for (h = 0; h < b->Hkv; h++) {
            for (e = 0; e < b->D; e++) row[e] = tk[(size_t)tp * b->D + e] + ds__ab_rand(&r);
            b->ops.f32_to_f16(b->kc + ((size_t)h * b->n + i) * b->D, row, b->D);
            for (e = 0; e < b->D; e++) row[e] = ds__ab_rand(&r);
            b->ops.f32_to_f16(b->vc + ((size_t)h * b->n + i) * b->D, row, b->D);
        }
        for (e = 0; e < DS__AB_DI; e++) gk[(size_t)i * DS__AB_DI + e] = tg[tp][e] + 0.5f * ds__ab_rand(&r);
    }
    for (i = 0; i < b->n; i++) {
        int want = topic[(int)((ds__ab_rand(&r) + 1.0f) * 0.5f * (float)i) % (i + 1)];
        for (h = 0; h < b->H; h++)
            for (e = 0; e < b->D; e++) b->q[((size_t)i * b->H + h) * b->D + e] = tk[(size_t)want * b->D + e] + ds__ab_rand(&r);
        for (h = 0; h < DS__AB_HI; h++)
            for (e = 0; e < DS__AB_DI; e++) b->gq[((size_t)i * DS__AB_HI + h) * DS__AB_DI + e] = tg[want][e] + 0.5f * ds__ab_rand(&r);
    }
    ds_free(tk), ds_free(row), ds_free(topic);
}

DS_API void ds_attn_bench_free(ds_attn_bench *b) {
    if (!b) return;
    ds__sda_tree_free(&b->tree);
    ds_free(b->kc), ds_free(b->vc), ds_free(b->q), ds_free(b->gq), ds_free(b->out);
    ds_free(b);
}

DS_API ds_status ds_attn_bench_create(int n_head, int n_head_kv, int head_dim, int n, const ds_model_config *sda, ds_pool *pool, ds_attn_bench **out) {
    ds_model_config c;
    ds_attn_bench *b;
    float *gk;
    ds_status st;
    int i;
    if (!out || !pool) return ds__fail(DS_ERR_INVALID_ARG, "attn_bench: NULL argument");
    *out = NULL;
    if (n_head < 1 || n_head_kv < 1 || n_head % n_head_kv || head_dim < 2 || head_dim > 512 || head_dim % 2 || n < 2)
        return ds__fail(DS_ERR_INVALID_ARG, "attn_bench: %d heads, %d KV heads of %d, %d tokens", n_head, n_head_kv, head_dim, n);
    memset(&c, 0, sizeof c);
    if (sda) c = *sda;
    if ((st = ds__sda_config_check(&c)) != DS_OK) return st;
    if (!(b = DS__CAST(ds_attn_bench *, ds__calloc(1, sizeof *b)))) return ds__fail(DS_ERR_NO_MEMORY, "attn_bench: out of memory");
    ds__sda_params_of(&c, &b->p);
    ds__ops_init(&b->ops, DS_BACKEND_CPU);
    b->pool = pool, b->H = n_head, b->Hkv = n_head_kv, b->D = head_dim, b->n = n, b->tasks = 4 * ds_pool_size(pool);
    for (i = 0; i < DS__AB_HI; i++) b->w[i] = 1.0f;
    b->g.n_heads = DS__AB_HI, b->g.dim = DS__AB_DI, b->g.w = b->w;
    b->kc = DS__CAST(uint16_t *, ds_alloc((size_t)n_head_kv * n * head_dim * 2));
    b->vc = DS__CAST(uint16_t *, ds_alloc((size_t)n_head_kv * n * head_dim * 2));
    b->q = DS__CAST(float *, ds_alloc((size_t)n * n_head * head_dim * sizeof(float)));
    b->out = DS__CAST(float *, ds_alloc((size_t)n * n_head * head_dim * sizeof(float)));
    b->gq = DS__CAST(float *, ds_alloc((size_t)n * DS__AB_HI * DS__AB_DI * sizeof(float)));
    gk = DS__CAST(float *, ds_alloc((size_t)n * DS__AB_DI * sizeof(float)));
    st = b->kc && b->vc && b->q && b->out && b->gq && gk ? ds__sda_tree_init(&b->tree, DS__AB_DI, b->p.block, n) : ds__fail(DS_ERR_NO_MEMORY, "attn_bench: out of memory for %d tokens", n);
    if (st == DS_OK) {   /* the whole tree first: a prefill appends its gate keys before attention */
        ds__ab_fill(b, gk);
        st = ds__sda_tree_append(&b->tree, gk, n);
    }
    ds_free(gk);
    if (st != DS_OK) {
        ds_attn_bench_free(b);
        return st;
    }
    *out = b;
    return DS_OK;
}

DS_API ds_status ds_attn_bench_run(ds_attn_bench *b, int sda, int T, int pos0, double *seconds, double *bytes_read, size_t *work_bytes) {
    double t0, keys = 0.0, row = 2.0 * 2.0 * b->Hkv * b->D;   /* K and V, f16, every KV head */
    size_t bytes;
    void *work;
    ds_status st = DS_OK;
    int gi, i, t;
    if (!b || !seconds || T < 1 || pos0 < 0 || pos0 + T > b->n) return ds__fail(DS_ERR_INVALID_ARG, "attn_bench: %d queries at %d of %d", T, pos0, b ? b->n : 0);
    if (!sda) {
        ds_model m;
        ds_session s;
        memset(&m, 0, sizeof m);
        memset(&s, 0, sizeof s);
        m.cfg.n_head = b->H, m.cfg.n_head_kv = b->Hkv, m.cfg.head_dim = b->D;
        s.m = &m, s.pool = b->pool, s.n_ctx = b->n, s.ops = b->ops, s.k_cache = b->kc, s.v_cache = b->vc;
        s.q = b->q + (size_t)pos0 * b->H * b->D, s.att = b->out;
        s.n_attn_tasks = b->tasks;
        s.attn_stride = ds__attn_stride(&m.cfg, b->n);
        bytes = (size_t)s.n_attn_tasks * s.attn_stride * sizeof(float);
        if (!(s.attn_scratch = DS__CAST(float *, ds_alloc(bytes)))) return ds__fail(DS_ERR_NO_MEMORY, "attn_bench: out of memory");
        t0 = ds_time();
        ds__attention(&s, 0, T, pos0);
        *seconds = ds_time() - t0;
        ds_free(s.attn_scratch);
        for (t = 0; t < T; t++) keys += pos0 + t + 1;
    } else {
        ds__sda_job j;
        memset(&j, 0, sizeof j);
        j.o = &b->ops, j.p = b->p, j.g = &b->g, j.tree = &b->tree, j.k_cache = b->kc, j.v_cache = b->vc;
        j.q = b->q + (size_t)pos0 * b->H * b->D, j.gq = b->gq + (size_t)pos0 * DS__AB_HI * DS__AB_DI, j.out = b->out;
        j.n_ctx = b->n, j.H = b->H, j.Hkv = b->Hkv, j.D = b->D, j.T = T, j.pos0 = pos0;
        bytes = ds__sda_work_bytes(&j, b->tasks);
        if (!(work = ds_alloc(bytes))) return ds__fail(DS_ERR_NO_MEMORY, "attn_bench: out of memory");
        t0 = ds_time();
        st = b->ops.sda_attention(&j, b->pool, work, b->tasks);
        *seconds = ds_time() - t0;
        if (st == DS_OK)   /* keys of the selected blocks each query may see; a bound on the nodes scored */
            for (gi = 0; gi < j.n_groups; gi++) {
                int qb = pos0 / b->p.block + gi, t0q = DS__MAX(pos0, qb * b->p.block), t1q = DS__MIN(pos0 + T, (qb + 1) * b->p.block);
                for (t = t0q; t < t1q; t++)
                    for (i = 0; i < j.n_sel[gi]; i++) keys += DS__MIN(b->p.block, t + 1 - j.sel[(size_t)gi * j.max_sel + i] * b->p.block);
                keys += (double)(2 * ds__sda_beam(&b->p)) * b->tree.n_levels * DS__AB_DI * 4 / row;
            }
        ds_free(work);
        bytes += (b->tree.off[b->tree.n_levels - 1] + DS__AB_DI) * sizeof(float);
    }
    if (bytes_read) *bytes_read = keys * row / T;
    if (work_bytes) *work_bytes = bytes;
    return st;
}

/* ---- forward ------------------------------------------------------------------------------- */
/* Per-token work between the matmuls, fused and split over the pool by tokens: a prefill
   chunk of hundreds of tokens would otherwise run it on one thread. */
typedef enum ds__tok_op {
    DS__TOK_NORM,       /* x += tmp (when add), xn = rmsnorm(x) * w */
    DS__TOK_QKV,        /* q, k, v biases; rope on q and k; k and v into the cache */
    DS__TOK_SWIGLU      /* gate = silu(gate) * up */
} ds__tok_op;
typedef struct ds__tok_job {
    ds_session *s;
    const ds__layer *L;
    ds__tok_op op;
    const float *norm_w;
    int add, il, T, pos0;
} ds__tok_job;

static void ds__tok_qkv(const ds__tok_job *j, int t) {
    ds_session *s = j->s;
    const ds_model_config *c = &s->m->cfg;
    int D = c->head_dim, QD = c->n_head * D, KD = c->n_head_kv * D, half = c->n_rot / 2, h;
    float *q = s->q + (size_t)t * QD, *k = s->k + (size_t)t * KD, *v = s->v + (size_t)t * KD;
    const float *cs = s->rope_cs + (size_t)t * half, *sn = s->rope_sn + (size_t)t * half;
    if (j->L->gqa.bq) {
        s->ops.axpy(q, 1.0f, j->L->gqa.bq, QD);
        s->ops.axpy(k, 1.0f, j->L->gqa.bk, KD);
        s->ops.axpy(v, 1.0f, j->L->gqa.bv, KD);
    }
    s->ops.rope(q, c->n_head, D, c->n_rot / 2, c->n_rot / 2, c->rope_neox, cs, sn);
    s->ops.rope(k, c->n_head_kv, D, c->n_rot / 2, c->n_rot / 2, c->rope_neox, cs, sn);
    for (h = 0; h < c->n_head_kv; h++) {
        size_t at = (((size_t)j->il * c->n_head_kv + h) * (size_t)s->n_ctx + (size_t)(j->pos0 + t)) * D;
        s->ops.f32_to_f16(s->k_cache + at, k + (size_t)h * D, D);
        s->ops.f32_to_f16(s->v_cache + at, v + (size_t)h * D, D);
    }
}

static void ds__tok_task(void *ctx, int i, int n) {
    const ds__tok_job *j = DS__CAST(const ds__tok_job *, ctx);
    ds_session *s = j->s;
    const ds_model_config *c = &s->m->cfg;
    int t, C = c->n_embd, F = c->n_ff;
    for (t = j->T * i / n; t < j->T * (i + 1) / n; t++) {
        if (j->op == DS__TOK_NORM) {
            float *x = s->x + (size_t)t * C;
            if (j->add) s->ops.axpy(x, 1.0f, s->tmp + (size_t)t * C, C);
            s->ops.rmsnorm(s->xn + (size_t)t * C, x, j->norm_w, C, c->norm_eps);
        } else if (j->op == DS__TOK_QKV) {
            ds__tok_qkv(j, t);
        } else {
            s->ops.swiglu(s->gate + (size_t)t * F, s->gate + (size_t)t * F, s->up + (size_t)t * F, F);
        }
    }
}

static void ds__per_token(ds_session *s, ds__tok_op op, const ds__layer *L, int il, int T, int pos0, const float *norm_w, int add) {
    ds__tok_job j;
    int n = T < 8 ? 1 : DS__MIN(T / 4, 4 * ds_pool_size(s->pool));
    j.s = s;
    j.L = L;
    j.op = op;
    j.norm_w = norm_w;
    j.add = add;
    j.il = il;
    j.T = T;
    j.pos0 = pos0;
    if (n == 1) ds__tok_task(&j, 0, 1);
    else ds_pool_run(s->pool, ds__tok_task, &j, n);
}

/* y (T, rows) = x (T, cols) @ w^T, plus the low-rank products of the adapters the session
   attached to layer il's matrix `slot` (one of DS__LORA_SLOTS; il < 0: none) */
static void ds__matmul_w(ds_session *s, float *y, const float *x, int T, const ds__mat *w, int il, int slot) {
    if (s->observer && w->t) s->observer(s->observer_user, w->t->name.ptr, w->t->name.len, x, T, (int)w->cols);
    ds__matmul(&s->ops, s->pool, y, x, T, w->data, w->type, (int)w->rows, (int)w->cols, s->ws);
    if (il >= 0) ds__lora_apply(s, y, x, T, il * DS__LORA_SLOTS + slot, w);
}

/* cos and sin of theta_i = pos * base^(-2i/n_rot) for the chunk's positions, with llama.cpp's
   float recurrence (theta_{i+1} = theta_i * base^(-2/n_rot)) so the rotations agree with it to
   the last bit; shared by every layer */
static void ds__rope_tables(ds_session *s, int T, int pos0) {
    const ds_model_config *c = &s->m->cfg;
    int half = c->n_rot / 2, t, i;
    float step = powf(c->rope_base, -2.0f / (float)c->n_rot);
    for (t = 0; t < T; t++) {
        float theta = (float)(pos0 + t);
        for (i = 0; i < half; i++, theta *= step) {
            s->rope_cs[(size_t)t * half + i] = cosf(theta);
            s->rope_sn[(size_t)t * half + i] = sinf(theta);
        }
    }
}

/* profiling (ds_session_config.profile): ds__prof_now is the start of an op, 0 when the
   session does not profile; ds__prof_lap adds the time since t0 to kind k and returns the
   start of the next op */
static double ds__prof_now(const ds_session *s) { return s->profile ? ds_time() : 0.0; }
static double ds__prof_lap(ds_session *s, ds_op_kind k, double t0) {
    double t;
    if (!s->profile) return 0.0;
    t = ds_time();
    s->stats.seconds[k] += t - t0;
    return t;
}

/* tmp (T, C) = grouped-query attention of xn; the new keys and values go into the cache */
static void ds__gqa_forward(ds_session *s, const ds__layer *L, int il, int T, int pos0) {
    double t = ds__prof_now(s);
    ds__matmul_w(s, s->q, s->xn, T, &L->gqa.wq, il, 0);
    ds__matmul_w(s, s->k, s->xn, T, &L->gqa.wk, il, 1);
    ds__matmul_w(s, s->v, s->xn, T, &L->gqa.wv, il, 2);
    t = ds__prof_lap(s, DS_OP_QKV, t);
    ds__per_token(s, DS__TOK_QKV, L, il, T, pos0, NULL, 0);
    t = ds__prof_lap(s, DS_OP_ROPE_CACHE, t);
    ds__attention(s, il, T, pos0);
    t = ds__prof_lap(s, DS_OP_ATTENTION, t);
    ds__matmul_w(s, s->tmp, s->att, T, &L->gqa.wo, il, 3);
    ds__prof_lap(s, DS_OP_ATTN_OUT, t);
}

/* tmp (T, C) = SDA of xn: the projections, RoPE and cache of grouped-query attention, the
   gate's keys into the layer's tree, then attention over the blocks the gate picks */
static void ds__sda_forward(ds_session *s, const ds__layer *L, int il, int T, int pos0) {
    const ds_model_config *c = &s->m->cfg;
    int Hi, Di, D = c->head_dim, G = c->n_head / c->n_head_kv, t, h, e;
    float one = 1.0f;
    ds__sda_gate g;
    ds__sda_job j;
    ds__sda_gate_dims(c, &Hi, &Di);
    ds__matmul_w(s, s->q, s->xn, T, &L->gqa.wq, il, 0);
    ds__matmul_w(s, s->k, s->xn, T, &L->gqa.wk, il, 1);
    ds__matmul_w(s, s->v, s->xn, T, &L->gqa.wv, il, 2);
    ds__per_token(s, DS__TOK_QKV, L, il, T, pos0, NULL, 0);
    memset(&g, 0, sizeof g);
    g.n_heads = Hi, g.dim = Di;
    if (L->sda.gate_q.data) {   /* the indexer's projections; its keys cached in f16 */
        ds__matmul_w(s, s->sda_gq, s->xn, T, &L->sda.gate_q, -1, 0);
        ds__matmul_w(s, s->sda_gk, s->xn, T, &L->sda.gate_k, -1, 0);
        s->ops.f32_to_f16(s->sda_keys + ((size_t)il * s->n_ctx + (size_t)pos0) * Di, s->sda_gk, T * Di);
        g.w = L->sda.gate_w;
    } else {   /* per KV head, the sum of its G queries (RoPE'd, as its keys are) */
        for (t = 0; t < T; t++)
            for (h = 0; h < c->n_head_kv; h++) {
                float *gq = s->sda_gq + (size_t)t * Di + (size_t)h * D;
                memset(gq, 0, (size_t)D * sizeof(float));
                for (e = 0; e < G; e++) s->ops.axpy(gq, 1.0f, s->q + ((size_t)t * c->n_head + (size_t)(h * G + e)) * D, D);
            }
        g.w = &one;
        g.linear = 1;
    }
    ds__sda_gate_keys(s, il, pos0, T, s->sda_gk);
    (void)ds__sda_tree_append(&s->sda_tree[il], s->sda_gk, T);   /* holds [0, pos0) already */
    ds__sda_session_job(s, il, T, pos0, &g, &j);
    (void)s->ops.sda_attention(&j, s->pool, s->sda_work, s->n_sda_tasks);   /* settings checked at session creation */
    ds__matmul_w(s, s->tmp, s->att, T, &L->gqa.wo, il, 3);
}

/* tmp (T, C) = W_down (silu(W_gate xn) * W_up xn) */
static void ds__ffn_forward(ds_session *s, const ds__layer *L, int il, int T, int pos0) {
    double t = ds__prof_now(s);
    ds__matmul_w(s, s->gate, s->xn, T, &L->ffn.gate, il, 4);
    ds__matmul_w(s, s->up, s->xn, T, &L->ffn.up, il, 5);
    t = ds__prof_lap(s, DS_OP_FFN_UP, t);
    ds__per_token(s, DS__TOK_SWIGLU, L, il, T, pos0, NULL, 0);
    t = ds__prof_lap(s, DS_OP_SWIGLU, t);
    ds__matmul_w(s, s->tmp, s->gate, T, &L->ffn.down, il, 6);
    ds__prof_lap(s, DS_OP_FFN_DOWN, t);
}

/* One layer on xn = attn_norm(x) (T, C), its attention and feed-forward those its config
   names (the loaders accept only the kinds this build has): leaves x updated and tmp (T, C)
   holding the feed-forward output still to be added (the next norm adds it). */
static void ds__layer_forward(ds_session *s, int il, int T, int pos0) {
    const ds_model_config *c = &s->m->cfg;
    const ds__layer *L = &s->m->layers[il];
    double t = ds__prof_now(s);
    switch (c->layers[il].attn) {
#if !defined(DS_NO_DEEPSEEK2)
    case DS_ATTN_MLA:
        ds__mla_forward(s->pool, c, &L->mla, s->xn, T, pos0, s->mla_cache + (size_t)il * s->n_ctx * ds__mla_cache_row(c), 0, s->tmp, &s->dsk);
        ds__prof_lap(s, DS_OP_ATTENTION, t);
        break;
#endif
    case DS_ATTN_SDA:
        ds__sda_forward(s, L, il, T, pos0);
        break;
    default:
        ds__gqa_forward(s, L, il, T, pos0);
        break;
    }
    t = ds__prof_now(s);
    ds__per_token(s, DS__TOK_NORM, L, il, T, pos0, L->ffn_norm, 1);
    t = ds__prof_lap(s, DS_OP_NORM, t);
    switch (c->layers[il].ffn) {
#if !defined(DS_NO_DEEPSEEK2)
    case DS_FFN_MOE:
        ds__moe_forward(s->pool, c, &L->moe, s->xn, T, s->tmp, &s->dsk);
        ds__prof_lap(s, DS_OP_FFN_UP, t);
        break;
#endif
    default:
        ds__ffn_forward(s, L, il, T, pos0);
        break;
    }
}

/* Runs T <= n_batch tokens at s->pos; logits gets the last row's (all = 0) or every row's
   (all = 1) n_vocab logits, or nothing when NULL. */
static void ds__forward(ds_session *s, const int32_t *tokens, int T, float *logits, int all) {
    const ds_model *m = s->m;
    const ds_model_config *c = &m->cfg;
    int C = c->n_embd, t, il, first;
    double t0 = ds__prof_now(s);
    s->ops.embed(s->x, m->tok_embd.type, m->tok_embd.data, tokens, T, C);
    ds__rope_tables(s, T, s->pos);
    t0 = ds__prof_lap(s, DS_OP_EMBED, t0);
    ds__per_token(s, DS__TOK_NORM, NULL, 0, T, s->pos, m->layers[0].attn_norm, 0);
    ds__prof_lap(s, DS_OP_NORM, t0);
    for (il = 0; il < c->n_layer; il++) {
        ds__layer_forward(s, il, T, s->pos);
        t0 = ds__prof_now(s);
        if (il + 1 < c->n_layer) ds__per_token(s, DS__TOK_NORM, NULL, il, T, s->pos, m->layers[il + 1].attn_norm, 1);
        ds__prof_lap(s, DS_OP_NORM, t0);
    }
    memcpy(s->tokens + s->pos, tokens, (size_t)T * sizeof(int32_t));
    s->pos += T;
    s->stats.tokens += T;
    s->stats.forwards++;
    if (!logits) return;
    t0 = ds__prof_now(s);
    first = all ? 0 : T - 1;
    for (t = first; t < T; t++) {
        float *x = s->x + (size_t)t * C;
        s->ops.axpy(x, 1.0f, s->tmp + (size_t)t * C, C);
        s->ops.rmsnorm(s->xn + (size_t)t * C, x, m->output_norm, C, c->norm_eps);
    }
    ds__matmul_w(s, logits, s->xn + (size_t)first * C, T - first, &m->output, -1, 0);
    ds__prof_lap(s, DS_OP_OUTPUT, t0);
}

static ds_status ds__session_check(const ds_session *s, const int32_t *tokens, int n) {
    int i;
    if (!s || !tokens || n < 1) return ds__fail(DS_ERR_INVALID_ARG, "session: eval needs a session and n >= 1 tokens");
    if (n > s->n_ctx - s->pos) return ds__fail(DS_ERR_STATE, "session: %d tokens do not fit: the context holds %d of %d", n, s->pos, s->n_ctx);
    for (i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= s->m->cfg.n_vocab) return ds__fail(DS_ERR_INVALID_ARG, "session: token %d (at %d) is outside the vocabulary of %d", tokens[i], i, s->m->cfg.n_vocab);
    return DS_OK;
}

static ds_status ds__session_eval(ds_session *s, const int32_t *tokens, int n, float *logits, int all) {
    ds_status st = ds__session_check(s, tokens, n);
    int i;
    if (st != DS_OK) return st;
    for (i = 0; i < n; i += s->n_batch) {
        int T = DS__MIN(s->n_batch, n - i), last = i + T == n;
        float *out = all ? logits + (size_t)i * s->m->cfg.n_vocab : (last ? logits : NULL);
        ds__forward(s, tokens + i, T, logits ? out : NULL, all);
    }
    return DS_OK;
}

DS_API ds_session_stats ds_session_get_stats(const ds_session *s) {
    ds_session_stats st;
    if (s) return s->stats;
    memset(&st, 0, sizeof st);
    return st;
}
DS_API void ds_session_reset_stats(ds_session *s) {
    if (s) memset(&s->stats, 0, sizeof s->stats);
}
DS_API const char *ds_op_kind_name(ds_op_kind k) {
    static const char *const names[DS_OP_KIND_COUNT] = {"embedding", "norm", "matmul qkv", "rope + kv cache", "attention", "matmul attn out",
                                                        "matmul ffn gate+up", "swiglu", "matmul ffn down", "output"};
    return (int)k >= 0 && k < DS_OP_KIND_COUNT ? names[k] : "?";
}

DS_API ds_status ds_session_eval(ds_session *s, const int32_t *tokens, int n, float *logits) {
    return ds__session_eval(s, tokens, n, logits, 0);
}
DS_API ds_status ds_session_eval_all(ds_session *s, const int32_t *tokens, int n, float *logits) {
    if (!logits) return ds__fail(DS_ERR_INVALID_ARG, "session: eval_all needs a logits buffer");
    return ds__session_eval(s, tokens, n, logits, 1);
}

/* ---- sampler ------------------------------------------------------------------------------- */
typedef struct ds__cand {
    float p;    /* unnormalised probability exp(l - max) */
    int32_t id;
} ds__cand;

struct ds_sampler {
    ds_sampler_config cfg;
    int n_vocab;
    uint64_t rng;
    int32_t *recent;     /* ring of the last repeat_last_n accepted tokens */
    int n_recent, recent_head;
    float *logits;       /* (V) penalised, tempered */
    uint8_t *seen;       /* (V) marks during the penalty */
    ds__cand *cand;      /* (V) the kept candidates */
    int n_cand;
};

static uint64_t ds__splitmix64(uint64_t *state) {
    uint64_t z = (*state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}
static double ds__rand_unit(uint64_t *state) { return (double)(ds__splitmix64(state) >> 11) * (1.0 / 9007199254740992.0); }

DS_API ds_status ds_sampler_create(const ds_sampler_config *cfg, int n_vocab, ds_sampler **out) {
    ds_sampler *s;
    if (!out || n_vocab < 1) return ds__fail(DS_ERR_INVALID_ARG, "sampler: NULL out or n_vocab < 1");
    *out = NULL;
    s = DS__CAST(ds_sampler *, ds__calloc(1, sizeof *s));
    if (!s) return ds__fail(DS_ERR_NO_MEMORY, "sampler: out of memory");
    if (cfg) s->cfg = *cfg;
    if (s->cfg.repeat_last_n <= 0) s->cfg.repeat_last_n = 64;
    if (!(s->cfg.repeat_penalty > 0)) s->cfg.repeat_penalty = 1.0f;
    if (!(s->cfg.top_p > 0) || s->cfg.top_p > 1) s->cfg.top_p = 1.0f;
    s->n_vocab = n_vocab;
    s->recent = DS__CAST(int32_t *, ds__calloc((size_t)s->cfg.repeat_last_n, sizeof(int32_t)));
    s->logits = DS__CAST(float *, ds__calloc((size_t)n_vocab, sizeof(float)));
    s->seen = DS__CAST(uint8_t *, ds__calloc((size_t)n_vocab, 1));
    s->cand = DS__CAST(ds__cand *, ds__calloc((size_t)n_vocab, sizeof(ds__cand)));
    if (!s->recent || !s->logits || !s->seen || !s->cand) {
        ds_sampler_free(s);
        return ds__fail(DS_ERR_NO_MEMORY, "sampler: out of memory");
    }
    ds_sampler_reset(s, s->cfg.seed);
    *out = s;
    return DS_OK;
}

DS_API void ds_sampler_free(ds_sampler *s) {
    if (!s) return;
    ds_free(s->recent);
    ds_free(s->logits);
    ds_free(s->seen);
    ds_free(s->cand);
    ds_free(s);
}

DS_API void ds_sampler_reset(ds_sampler *s, uint64_t seed) {
    if (!s) return;
    s->rng = seed ? seed : UINT64_C(0x5EED5EED5EED5EED);
    s->n_recent = s->recent_head = 0;
}

DS_API void ds_sampler_accept(ds_sampler *s, int32_t token) {
    if (!s) return;
    s->recent[s->recent_head] = token;
    s->recent_head = (s->recent_head + 1) % s->cfg.repeat_last_n;
    if (s->n_recent < s->cfg.repeat_last_n) s->n_recent++;
}

/* each distinct recent token once: logit / r when positive, logit * r otherwise */
static void ds__sampler_penalize(ds_sampler *s) {
    float r = s->cfg.repeat_penalty;
    int i;
    if (r == 1.0f) return;
    for (i = 0; i < s->n_recent; i++) {
        int32_t id = s->recent[i];
        if (id < 0 || id >= s->n_vocab || s->seen[id]) continue;
        s->seen[id] = 1;
        s->logits[id] = s->logits[id] > 0 ? s->logits[id] / r : s->logits[id] * r;
    }
    for (i = 0; i < s->n_recent; i++)
        if (s->recent[i] >= 0 && s->recent[i] < s->n_vocab) s->seen[s->recent[i]] = 0;
}

static int32_t ds__argmax(const float *x, int n) {
    int32_t best = 0;
    int i;
    for (i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

static int ds__cand_cmp(const void *a, const void *b) {
    const ds__cand *x = DS__CAST(const ds__cand *, a), *y = DS__CAST(const ds__cand *, b);
    if (x->p != y->p) return x->p > y->p ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Candidates with p >= thr, sorted most likely first (ties: lower id first). */
static int ds__sampler_gather(ds_sampler *s, float thr) {
    int i, n = 0;
    for (i = 0; i < s->n_vocab; i++) {
        float p = s->logits[i];
        if (p >= thr) {
            s->cand[n].p = p;
            s->cand[n].id = i;
            n++;
        }
    }
    qsort(s->cand, (size_t)n, sizeof *s->cand, ds__cand_cmp);
    return n;
}

/* Top-k then top-p on probabilities p (in s->logits, max 1, total z). Sorting the whole
   vocabulary per token is costly, so only tokens above a threshold are sorted; the threshold
   drops until the kept set provably lies inside them (all of the top k, or a prefix whose mass
   reaches top_p while every token left out is less likely than all in it). */
static int ds__sampler_top(ds_sampler *s, double z) {
    int k = s->cfg.top_k > 0 && s->cfg.top_k < s->n_vocab ? s->cfg.top_k : s->n_vocab;
    double top_p = s->cfg.top_p;
    float thr = 1e-3f;
    for (;;) {
        int n = ds__sampler_gather(s, thr), i, complete = thr == 0.0f;
        double zk = z, cum = 0;
        if (n >= k) {
            n = k;
            complete = 1;
            for (zk = 0, i = 0; i < n; i++) zk += s->cand[i].p;
        }
        if (complete || k == s->n_vocab) { /* zk is the mass the nucleus is taken from */
            for (i = 0; i < n && top_p < 1.0; i++) {
                cum += s->cand[i].p;
                if (cum >= top_p * zk) return i + 1;
            }
            if (complete) return n;
        }
        thr = thr > 1e-30f ? thr * 1e-6f : 0.0f;
    }
}

/* Fills s->cand with the tokens the chain keeps (s->n_cand), from logits already penalised
   and divided by the temperature in s->logits. */
static void ds__sampler_candidates(ds_sampler *s) {
    float mx = s->logits[ds__argmax(s->logits, s->n_vocab)];
    double z = 0;
    int i, n;
    for (i = 0; i < s->n_vocab; i++) {
        s->logits[i] = expf(s->logits[i] - mx);
        z += s->logits[i];
    }
    if (s->cfg.top_k > 0 || s->cfg.top_p < 1.0f) {
        n = ds__sampler_top(s, z);
    } else {
        for (n = i = 0; i < s->n_vocab; i++) {
            s->cand[n].p = s->logits[i];
            s->cand[n].id = i;
            n++;
        }
    }
    if (s->cfg.min_p > 0) { /* the most likely has p = 1 */
        int kept = 0;
        for (i = 0; i < n; i++)
            if (s->cand[i].p >= s->cfg.min_p) s->cand[kept++] = s->cand[i];
        n = kept;
    }
    s->n_cand = n;
}

DS_API int32_t ds_sampler_sample(ds_sampler *s, const float *logits) {
    double total = 0, u;
    int i;
    if (!s || !logits) return -1;
    memcpy(s->logits, logits, (size_t)s->n_vocab * sizeof(float));
    ds__sampler_penalize(s);
    if (!(s->cfg.temperature > 0)) return ds__argmax(s->logits, s->n_vocab);
    for (i = 0; i < s->n_vocab; i++) s->logits[i] /= s->cfg.temperature;
    ds__sampler_candidates(s);
    for (i = 0; i < s->n_cand; i++) total += s->cand[i].p;
    u = ds__rand_unit(&s->rng) * total;
    for (i = 0; i < s->n_cand - 1; i++) {
        u -= s->cand[i].p;
        if (u < 0) break;
    }
    return s->cand[i].id;
}

/* ---- generation ---------------------------------------------------------------------------- */
struct ds_generator {
    ds_session *s;
    ds_generate_config cfg;
    ds_sampler *smp;
    int32_t *prompt;           /* tokens still to evaluate: prompt[done..n_prompt) */
    int n_prompt, done;
    float *logits;             /* (V) of the last evaluated token */
    char *text;                /* completion bytes; [0, emitted) went to on_token */
    size_t len, cap, emitted;
    ds_detok_stream detok;
    ds_generate_result res;
    double t_decode;           /* running estimate of one token's sample + decode, seconds */
    double t_prefill_tok;      /* running estimate of prefill seconds per token */
};

/* Text -> ids in a buffer of ds_alloc (free with ds_free), sized for any input: an ill-formed
   byte becomes U+FFFD, up to 3 tokens. room extra ids are left free in front. */
static ds_status ds__tokenize_alloc(const ds_tokenizer *t, const char *text, size_t len, int flags, size_t room, int32_t **out, size_t *n) {
    size_t cap = len + 4;
    ds_status st;
    for (;;) {
        int32_t *ids = DS__CAST(int32_t *, ds_alloc((room + cap) * sizeof(int32_t)));
        if (!ids) return ds__fail(DS_ERR_NO_MEMORY, "tokenize: out of memory for %zu tokens", cap);
        st = ds_tokenize(t, text, len, flags, ids + room, cap, n);
        if (st == DS_OK) {
            *out = ids;
            return DS_OK;
        }
        ds_free(ids);
        if (st != DS_ERR_BOUNDS || *n <= cap) return st;
        cap = *n;
    }
}

/* the prompt's ids (g->prompt, n of them) less what the session already holds */
static ds_status ds__gen_take_prompt(ds_generator *g, int n) {
    ds_session *s = g->s;
    int keep = g->cfg.append ? s->pos : 0;
    if (!g->cfg.append) { /* reuse the longest common start, but evaluate at least one token */
        while (keep < n - 1 && keep < s->pos && s->tokens[keep] == g->prompt[keep]) keep++;
        g->res.n_reused = keep;
        memmove(g->prompt, g->prompt + keep, (size_t)(n - keep) * sizeof(int32_t));
        n -= keep;
    } else if (n == 0 && s->pos > 0) { /* nothing new: re-run the last token for its logits */
        g->prompt[0] = s->tokens[s->pos - 1];
        keep = s->pos - 1;
        n = 1;
    }
    if (n == 0) return ds__fail(DS_ERR_INVALID_ARG, "generate: empty prompt and empty session");
    if (keep + n > s->n_ctx) return ds__fail(DS_ERR_STATE, "generate: the prompt needs %d tokens, the context has %d", keep + n, s->n_ctx);
    ds_session_rewind(s, keep);
    g->n_prompt = n;
    return DS_OK;
}

/* text -> g->prompt: BOS in front when the vocabulary asks for it and the text does not
   already start with it (a chat template may write it) */
static ds_status ds__gen_tokenize(ds_generator *g, const char *prompt) {
    const ds_tokenizer *tok = g->s->m->tok;
    int32_t bos = ds_tokenizer_bos(tok);
    size_t nt = 0;
    int add = (!g->cfg.append || g->s->pos == 0) && ds_tokenizer_adds_bos(tok) && bos >= 0;
    ds_status st = ds__tokenize_alloc(tok, prompt, strlen(prompt), g->cfg.plain_text ? 0 : DS_TOKENIZE_PARSE_SPECIAL, 1, &g->prompt, &nt);
    if (st != DS_OK) return st;
    if (nt >= INT_MAX / 2) return ds__fail(DS_ERR_OVERFLOW, "generate: the prompt has %zu tokens", nt);
    if (add && !(nt > 0 && g->prompt[1] == bos)) {
        g->prompt[0] = bos;
        nt++;
    } else {
        memmove(g->prompt, g->prompt + 1, nt * sizeof(int32_t));
    }
    return ds__gen_take_prompt(g, (int)nt);
}

/* a generator for the text prompt, or for the n ids when prompt is NULL */
static ds_status ds__generator_new(ds_session *s, const char *prompt, const int32_t *ids, int n, const ds_generate_config *cfg, ds_generator **out) {
    ds_generator *g;
    ds_status st;
    int i;
    if (!s || (!prompt && (!ids || n < 0)) || !out) return ds__fail(DS_ERR_INVALID_ARG, "generate: NULL argument");
    *out = NULL;
    g = DS__CAST(ds_generator *, ds__calloc(1, sizeof *g));
    if (!g) return ds__fail(DS_ERR_NO_MEMORY, "generate: out of memory");
    g->s = s;
    if (cfg) g->cfg = *cfg;
    if (g->cfg.n_stop < 0 || (g->cfg.n_stop > 0 && !g->cfg.stop)) {
        st = ds__fail(DS_ERR_INVALID_ARG, "generate: n_stop %d with stop %p", g->cfg.n_stop, (const void *)g->cfg.stop);
    } else if (prompt) {
        st = ds__gen_tokenize(g, prompt);
    } else if (!(g->prompt = DS__CAST(int32_t *, ds_alloc(((size_t)n + 1) * sizeof(int32_t))))) {
        st = ds__fail(DS_ERR_NO_MEMORY, "generate: out of memory");
    } else {
        for (i = 0; i < n; i++)
            if (ids[i] < 0 || ids[i] >= s->m->cfg.n_vocab) break;
        if (i < n) st = ds__fail(DS_ERR_INVALID_ARG, "generate: token %d at %d is outside the vocabulary of %d", (int)ids[i], i, s->m->cfg.n_vocab);
        else {
            if (n) memcpy(g->prompt, ids, (size_t)n * sizeof(int32_t));
            st = ds__gen_take_prompt(g, n);
        }
    }
    if (st == DS_OK && (st = ds_sampler_create(&g->cfg.sampler, s->m->cfg.n_vocab, &g->smp)) == DS_OK) {
        g->cap = 256;
        g->text = DS__CAST(char *, ds__calloc(g->cap, 1));
        g->logits = DS__CAST(float *, ds__calloc((size_t)s->m->cfg.n_vocab, sizeof(float)));
        if (!g->text || !g->logits) st = ds__fail(DS_ERR_NO_MEMORY, "generate: out of memory");
    }
    if (st != DS_OK) {
        ds_generator_free(g);
        return st;
    }
    for (i = 0; i < s->pos; i++) ds_sampler_accept(g->smp, s->tokens[i]);
    for (i = 0; i < g->n_prompt; i++) ds_sampler_accept(g->smp, g->prompt[i]);
    *out = g;
    return DS_OK;
}

DS_API ds_status ds_generator_create(ds_session *s, const char *prompt, const ds_generate_config *cfg, ds_generator **out) {
    if (!prompt) return ds__fail(DS_ERR_INVALID_ARG, "generate: NULL prompt");
    return ds__generator_new(s, prompt, NULL, 0, cfg, out);
}

DS_API ds_status ds_generator_create_tokens(ds_session *s, const int32_t *ids, int n, const ds_generate_config *cfg, ds_generator **out) {
    return ds__generator_new(s, NULL, ids, n, cfg, out);
}

DS_API void ds_generator_free(ds_generator *g) {
    if (!g) return;
    ds_sampler_free(g->smp);
    ds_free(g->prompt);
    ds_free(g->logits);
    ds_free(g->text);
    ds_free(g);
}

DS_API ds_gen_state ds_generator_state(const ds_generator *g) { return g ? g->res.state : DS_GEN_CANCELLED; }
DS_API const ds_generate_result *ds_generator_result(const ds_generator *g) { return g ? &g->res : NULL; }
DS_API const char *ds_generator_text(const ds_generator *g, size_t *len) {
    if (len) *len = g ? g->emitted : 0;
    return g ? g->text : "";
}

static ds_status ds__gen_append(ds_generator *g, const char *bytes, size_t n) {
    if (g->len + n + 1 > g->cap) {
        size_t cap = DS__MAX(2 * g->cap, g->len + n + 1);
        char *t = DS__CAST(char *, ds_alloc(cap));
        if (!t) return ds__fail(DS_ERR_NO_MEMORY, "generate: out of memory");
        memcpy(t, g->text, g->len + 1);
        ds_free(g->text);
        g->text = t;
        g->cap = cap;
    }
    memcpy(g->text + g->len, bytes, n);
    g->len += n;
    g->text[g->len] = 0;
    return DS_OK;
}

/* appends what the model produced, each ill-formed UTF-8 subpart as U+FFFD: the stream holds
   back only a valid start of a sequence, so every piece is checked on its own */
static ds_status ds__gen_append_utf8(ds_generator *g, const char *bytes, size_t n) {
    size_t i = 0;
    ds_status st = DS_OK;
    while (i < n && st == DS_OK) {
        size_t ok = ds__utf8_valid_prefix(bytes + i, n - i);
        uint32_t cp;
        st = ds__gen_append(g, bytes + i, ok);
        i += ok;
        if (i < n && st == DS_OK) {
            int k = ds__utf8_decode(DS__CAST(const unsigned char *, bytes) + i, n - i, &cp);
            st = ds__gen_append(g, "\xEF\xBF\xBD", 3);
            i += (size_t)(k < 0 ? -k : k);
        }
    }
    return st;
}

/* the end of the text: a sequence the model left unfinished becomes U+FFFD */
static ds_status ds__gen_flush_utf8(ds_generator *g) {
    if (!g->detok.n_pending) return DS_OK;
    g->detok.n_pending = 0;
    return ds__gen_append(g, "\xEF\xBF\xBD", 3);
}

/* Where the text may be emitted up to: the start of the first complete stop string (found:
   1), else the start of the longest tail that could still grow into one. */
static size_t ds__gen_stop_scan(const ds_generator *g, int *found) {
    size_t i, hold = g->len;
    int k;
    *found = 0;
    for (i = g->emitted; i < g->len; i++)
        for (k = 0; k < g->cfg.n_stop; k++) {
            const char *st = g->cfg.stop[k];
            size_t sl = strlen(st), avail = g->len - i;
            if (!sl) continue;
            if (avail >= sl && !memcmp(g->text + i, st, sl)) {
                *found = 1;
                return i;
            }
            if (avail < sl && hold == g->len && !memcmp(g->text + i, st, avail)) hold = i;
        }
    return hold;
}

/* hands text[emitted, upto) to on_token; a nonzero return cancels */
static void ds__gen_emit(ds_generator *g, int32_t token, size_t upto) {
    int cancel = 0;
    if (g->cfg.on_token) cancel = g->cfg.on_token(g->cfg.user, token, g->text + g->emitted, upto - g->emitted);
    g->emitted = upto;
    if (cancel && g->res.state == DS_GEN_RUNNING) {
        g->res.state = DS_GEN_CANCELLED;
        g->len = g->emitted;   /* what was held back is dropped */
        g->text[g->len] = 0;
    }
}

/* one prefill chunk of up to n tokens; the last chunk leaves the logits */
static ds_status ds__gen_prefill(ds_generator *g, int n) {
    double t0 = ds_time(), dt;
    int last = g->done + n == g->n_prompt;
    ds_status st = ds_session_eval(g->s, g->prompt + g->done, n, last ? g->logits : NULL);
    if (st != DS_OK) return st;
    dt = ds_time() - t0;
    g->done += n;
    g->res.n_prompt += n;
    g->res.prompt_seconds += dt;
    g->t_prefill_tok = dt / n;
    return DS_OK;
}

/* samples one token, streams its text, and evaluates it unless the generation ended */
static ds_status ds__gen_token(ds_generator *g) {
    const ds_tokenizer *tok = g->s->m->tok;
    double t0 = ds_time();
    int32_t id = ds_sampler_sample(g->smp, g->logits);
    char piece[512];
    size_t n = 0, upto;
    int found = 0;
    ds_status st;
    g->res.n_generated++;
    if (ds_tokenizer_is_eog(tok, id)) {
        g->res.state = DS_GEN_EOS;
        if ((st = ds__gen_flush_utf8(g)) != DS_OK) return st;
        if (g->emitted < g->len) ds__gen_emit(g, -1, g->len);
        g->res.gen_seconds += ds_time() - t0;
        return DS_OK;
    }
    ds_sampler_accept(g->smp, id);
    if ((st = ds_detok_stream_push(tok, &g->detok, id, piece, sizeof piece, &n)) != DS_OK) return st;
    if ((st = ds__gen_append_utf8(g, piece, n)) != DS_OK) return st;
    if (((g->cfg.max_tokens > 0 && g->res.n_generated >= g->cfg.max_tokens) || g->s->pos >= g->s->n_ctx) && (st = ds__gen_flush_utf8(g)) != DS_OK) return st;
    upto = ds__gen_stop_scan(g, &found);
    if (found) {
        g->res.state = DS_GEN_STOP_STRING;
        g->len = upto;
        g->text[g->len] = 0;
    } else if (g->cfg.max_tokens > 0 && g->res.n_generated >= g->cfg.max_tokens) {
        g->res.state = DS_GEN_MAX_TOKENS;
        upto = g->len;
    }
    ds__gen_emit(g, id, upto);
    if (g->s->pos >= g->s->n_ctx) {
        if (g->res.state == DS_GEN_RUNNING) g->res.state = DS_GEN_CONTEXT_FULL;
        if (g->emitted < g->len) ds__gen_emit(g, -1, g->len);
    } else if ((st = ds_session_eval(g->s, &id, 1, g->logits)) != DS_OK) {
        return st;
    }
    g->res.gen_seconds += ds_time() - t0;
    g->t_decode = g->t_decode > 0 ? 0.7 * g->t_decode + 0.3 * (ds_time() - t0) : ds_time() - t0;
    return DS_OK;
}

DS_API ds_status ds_generator_step(ds_generator *g, int max_tokens, double max_seconds) {
    double t0 = ds_time();
    int units = 0, produced = 0;
    if (!g) return ds__fail(DS_ERR_INVALID_ARG, "generate: NULL generator");
    while (g->res.state == DS_GEN_RUNNING && !(max_tokens > 0 && produced >= max_tokens)) {
        double left = max_seconds - (ds_time() - t0);
        ds_status st;
        if (g->done < g->n_prompt) {
            int n = g->n_prompt - g->done;
            if (max_seconds > 0) { /* as many tokens as the time left allows (1 to measure) */
                int fit = g->t_prefill_tok > 0 ? (int)(left / g->t_prefill_tok) : 1;
                if (units > 0 && fit < 1) break;
                n = DS__MIN(n, DS__MAX(fit, 1));
            }
            st = ds__gen_prefill(g, n);
        } else {
            /* before the first decode, a one-token prefill chunk is the best guess */
            double est = g->t_decode > 0 ? g->t_decode : g->t_prefill_tok;
            if (max_seconds > 0 && units > 0 && left < est) break;
            st = ds__gen_token(g);
            produced++;
        }
        if (st != DS_OK) return st;
        units++;
    }
    return DS_OK;
}

DS_API ds_status ds_generate(ds_session *s, const char *prompt, const ds_generate_config *cfg, ds_generate_result *result) {
    ds_generator *g;
    ds_status st = ds_generator_create(s, prompt, cfg, &g);
    if (st != DS_OK) return st;
    st = ds_generator_step(g, 0, 0);
    if (result) *result = g->res;
    ds_generator_free(g);
    return st;
}

/* ---- chat templates ------------------------------------------------------------------------
   A template renders into a ds__chat_out: text, and the spans of it that are the template's own
   special tokens (only those become special tokens in ds_chat_tokenize). */
typedef struct ds__chat_spec {
    ds_chat_template kind;
    const char *sys;    /* ChatML: the default system message as the body of a Jinja string */
    size_t sys_len;     /* literal (escapes not decoded yet), or NULL when there is none */
} ds__chat_spec;

/* DeepSeek's markup: "<｜User｜>" ... with U+FF5C (｜) and U+2581 (▁) */
#define DS__DSK_BOS "<\xEF\xBD\x9C" "begin\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>"
#define DS__DSK_EOS "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>"
#define DS__DSK_USER "<\xEF\xBD\x9CUser\xEF\xBD\x9C>"
#define DS__DSK_ASSISTANT "<\xEF\xBD\x9C" "Assistant\xEF\xBD\x9C>"
#define DS__DSK_TOOL(what) "<\xEF\xBD\x9Ctool\xE2\x96\x81" what "\xEF\xBD\x9C>"

typedef struct ds__chat_out {
    char *buf;
    size_t cap, pos;
    size_t *marks;      /* (start, end) byte offsets of each template special token */
    size_t mark_cap, n_marks;
} ds__chat_out;

static int ds__chat_has(const char *s, size_t n, const char *needle) {
    size_t k = strlen(needle), i;
    for (i = 0; i + k <= n; i++)
        if (!memcmp(s + i, needle, k)) return 1;
    return 0;
}

/* The family of a Jinja chat template, and for ChatML the default system message: the body of
   a string literal '<|im_start|>system\n...<|im_end|>\n' written when messages[0] is no system
   message (SmolLM2, Qwen2). -1 when the family is none we know. */
static int ds__chat_detect(const char *src, size_t n, ds__chat_spec *sp) {
    size_t i;
    memset(sp, 0, sizeof *sp);
    if (ds__chat_has(src, n, "'Assistant: ' + message['content'] + eos_token")) sp->kind = DS_CHAT_DEEPSEEK2;
    else if (ds__chat_has(src, n, DS__DSK_USER) && ds__chat_has(src, n, DS__DSK_ASSISTANT) && ds__chat_has(src, n, DS__DSK_EOS)) sp->kind = DS_CHAT_DEEPSEEK3;
    else if (ds__chat_has(src, n, "<|start_header_id|>")) sp->kind = DS_CHAT_LLAMA3;
    else if (ds__chat_has(src, n, "<|im_start|>")) sp->kind = DS_CHAT_CHATML;
    else return -1;
    if (sp->kind != DS_CHAT_CHATML || !(ds__chat_has(src, n, "!= 'system'") || ds__chat_has(src, n, "!= \"system\""))) return sp->kind;
    for (i = 0; i + 20 < n; i++) {
        char q = src[i];
        size_t b = i + 1, e;
        if ((q != '\'' && q != '"') || memcmp(src + b, "<|im_start|>system", 18)) continue;
        b += 18;
        if (src[b] == '\n') b++;
        else if (src[b] == '\\' && src[b + 1] == 'n') b += 2;
        else continue;
        for (e = b; e < n && src[e] != q; e++)
            if (src[e] == '\\') e++;
        if (e >= n) break;
        if (e - b >= 11 && !memcmp(src + e - 11, "<|im_end|>\n", 11)) sp->sys_len = e - 11 - b;
        else if (e - b >= 12 && !memcmp(src + e - 12, "<|im_end|>\\n", 12)) sp->sys_len = e - 12 - b;
        else continue;
        sp->sys = src + b;
        break;
    }
    return sp->kind;
}

static int ds__chat_family(const char *src, size_t n) {
    ds__chat_spec sp;
    return ds__chat_detect(src, n, &sp);
}

/* appends n bytes if they fit (keeping room for the NUL); pos counts them either way */
static void ds__chat_text(ds__chat_out *o, const char *s, size_t n) {
    if (o->pos + n < o->cap) memcpy(o->buf + o->pos, s, n);
    o->pos += n;
}
static void ds__chat_str(ds__chat_out *o, const char *s) { ds__chat_text(o, s, strlen(s)); }
static void ds__chat_special(ds__chat_out *o, const char *s) {
    if (o->n_marks + 2 <= o->mark_cap) {
        o->marks[o->n_marks] = o->pos;
        o->marks[o->n_marks + 1] = o->pos + strlen(s);
    }
    o->n_marks += 2;
    ds__chat_str(o, s);
}

/* the body of a Jinja string literal with its escapes decoded */
static void ds__chat_literal(ds__chat_out *o, const char *s, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) {
        char c = s[i];
        if (c == '\\' && i + 1 < n) {
            c = s[++i];
            c = c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : c;
        }
        ds__chat_text(o, &c, 1);
    }
}

/* Python's str.isspace(), which Jinja's trim strips */
static int ds__chat_is_space(uint32_t c) {
    return (c >= 9 && c <= 13) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
           c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

/* Llama-3's template trims the content (Jinja's trim: Unicode whitespace at both ends) */
/* a message's content: content_len bytes (NUL bytes are text), or up to its NUL */
static size_t ds__chat_len(const ds_chat_message *m) { return m->content_len ? m->content_len : strlen(m->content); }
static void ds__chat_content(ds__chat_out *o, const ds_chat_message *m) { ds__chat_text(o, m->content, ds__chat_len(m)); }

static void ds__chat_trimmed(ds__chat_out *o, const char *s, size_t n) {
    const unsigned char *u = DS__CAST(const unsigned char *, s);
    size_t a = 0, e = 0, i = 0;
    int seen = 0;
    while (i < n) { /* a: first non-space; e: the end of the last non-space */
        uint32_t cp;
        int k = ds__utf8_decode(u + i, n - i, &cp);
        size_t step = (size_t)(k < 0 ? -k : k);
        if (k < 0 || !ds__chat_is_space(cp)) {
            if (!seen) a = i;
            seen = 1;
            e = i + step;
        }
        i += step;
    }
    if (seen) ds__chat_text(o, s + a, e - a);
}

/* DeepSeek-V3: every system message first (joined by blank lines), then the turns; tool
   outputs are grouped between <｜tool▁outputs▁begin｜> and <｜tool▁outputs▁end｜> */
static void ds__chat_deepseek3(const ds_chat_message *msgs, int n, int add_assistant, ds__chat_out *o) {
    int i, first_sys = 1, in_tool = 0, first_output = 1;
    ds__chat_special(o, DS__DSK_BOS);
    for (i = 0; i < n; i++) {
        if (strcmp(msgs[i].role, "system")) continue;
        if (!first_sys) ds__chat_str(o, "\n\n");
        ds__chat_content(o, &msgs[i]);
        first_sys = 0;
    }
    for (i = 0; i < n; i++) {
        const char *role = msgs[i].role;
        if (!strcmp(role, "user")) {
            in_tool = 0;
            ds__chat_special(o, DS__DSK_USER);
            ds__chat_content(o, &msgs[i]);
        } else if (!strcmp(role, "assistant")) {
            ds__chat_special(o, in_tool ? DS__DSK_TOOL("outputs\xE2\x96\x81" "end") : DS__DSK_ASSISTANT);
            ds__chat_content(o, &msgs[i]);
            ds__chat_special(o, DS__DSK_EOS);
            in_tool = 0;
        } else if (!strcmp(role, "tool")) {
            in_tool = 1;
            if (first_output) ds__chat_special(o, DS__DSK_TOOL("outputs\xE2\x96\x81" "begin"));
            else ds__chat_str(o, "\n");
            ds__chat_special(o, DS__DSK_TOOL("output\xE2\x96\x81" "begin"));
            ds__chat_content(o, &msgs[i]);
            ds__chat_special(o, DS__DSK_TOOL("output\xE2\x96\x81" "end"));
            first_output = 0;
        }
    }
    if (in_tool) ds__chat_special(o, DS__DSK_TOOL("outputs\xE2\x96\x81" "end"));
    else if (add_assistant) ds__chat_special(o, DS__DSK_ASSISTANT);
}

static void ds__chat_render(const ds__chat_spec *sp, const ds_chat_message *msgs, int n, int add_assistant, ds__chat_out *o) {
    int i;
    if (sp->kind == DS_CHAT_DEEPSEEK3) {
        ds__chat_deepseek3(msgs, n, add_assistant, o);
        return;
    }
    if (sp->kind == DS_CHAT_DEEPSEEK2) ds__chat_special(o, DS__DSK_BOS);
    for (i = 0; i < n; i++) {
        const char *role = msgs[i].role;
        if (sp->kind == DS_CHAT_CHATML) {
            if (i == 0 && sp->sys && strcmp(role, "system")) {
                ds__chat_special(o, "<|im_start|>");
                ds__chat_str(o, "system\n");
                ds__chat_literal(o, sp->sys, sp->sys_len);
                ds__chat_special(o, "<|im_end|>");
                ds__chat_str(o, "\n");
            }
            ds__chat_special(o, "<|im_start|>");
            ds__chat_str(o, role);
            ds__chat_str(o, "\n");
            ds__chat_content(o, &msgs[i]);
            ds__chat_special(o, "<|im_end|>");
            ds__chat_str(o, "\n");
        } else if (sp->kind == DS_CHAT_LLAMA3) {
            if (i == 0) ds__chat_special(o, "<|begin_of_text|>");
            ds__chat_special(o, "<|start_header_id|>");
            ds__chat_str(o, role);
            ds__chat_special(o, "<|end_header_id|>");
            ds__chat_str(o, "\n\n");
            ds__chat_trimmed(o, msgs[i].content, ds__chat_len(&msgs[i]));
            ds__chat_special(o, "<|eot_id|>");
        } else if (!strcmp(role, "user")) {
            ds__chat_str(o, "User: ");
            ds__chat_content(o, &msgs[i]);
            ds__chat_str(o, "\n\n");
        } else if (!strcmp(role, "assistant")) {
            ds__chat_str(o, "Assistant: ");
            ds__chat_content(o, &msgs[i]);
            ds__chat_special(o, DS__DSK_EOS);
        } else if (!strcmp(role, "system")) {
            ds__chat_content(o, &msgs[i]);
            ds__chat_str(o, "\n\n");
        }
    }
    if (!add_assistant) return;
    if (sp->kind == DS_CHAT_CHATML) {
        ds__chat_special(o, "<|im_start|>");
        ds__chat_str(o, "assistant\n");
    } else if (sp->kind == DS_CHAT_LLAMA3) {
        ds__chat_special(o, "<|start_header_id|>");
        ds__chat_str(o, "assistant");
        ds__chat_special(o, "<|end_header_id|>");
        ds__chat_str(o, "\n\n");
    } else {
        ds__chat_str(o, "Assistant:");
    }
}

DS_API ds_status ds_model_chat_template(const ds_model *m, ds_chat_template *out) {
    if (!m || !out) return ds__fail(DS_ERR_INVALID_ARG, "chat: NULL argument");
    if (m->chat < 0) return ds__fail(DS_ERR_UNSUPPORTED, "chat: the model's chat template is none we know (ChatML, Llama-3, DeepSeek-V2, DeepSeek-V3)");
    *out = (ds_chat_template)m->chat;
    return DS_OK;
}

/* the spec for tmpl (DS_CHAT_AUTO: the model's, with its template's details) */
static ds_status ds__chat_spec_of(const ds_model *m, ds_chat_template tmpl, ds__chat_spec *sp) {
    ds_str src;
    ds_status st;
    memset(sp, 0, sizeof *sp);
    if (tmpl == DS_CHAT_AUTO) {
        if ((st = ds_model_chat_template(m, &tmpl)) != DS_OK) return st;
        if (ds_gguf_find(m->gguf, "tokenizer.chat_template") && ds_gguf_get_str(m->gguf, "tokenizer.chat_template", &src) == DS_OK &&
            ds__chat_detect(src.ptr, src.len, sp) == (int)tmpl)
            return DS_OK;
    }
    if (tmpl < DS_CHAT_CHATML || tmpl > DS_CHAT_DEEPSEEK3) return ds__fail(DS_ERR_INVALID_ARG, "chat: unknown template %d", (int)tmpl);
    sp->kind = tmpl;
    return DS_OK;
}

static ds_status ds__chat_check(const ds_chat_message *msgs, int n) {
    int i;
    if ((n > 0 && !msgs) || n < 0) return ds__fail(DS_ERR_INVALID_ARG, "chat: bad arguments");
    for (i = 0; i < n; i++)
        if (!msgs[i].role || !msgs[i].content) return ds__fail(DS_ERR_INVALID_ARG, "chat: message %d has a NULL role or content", i);
    return DS_OK;
}

static ds_status ds__chat_apply_spec(const ds__chat_spec *sp, const ds_chat_message *msgs, int n, int add_assistant, char *buf, size_t cap, size_t *len) {
    ds__chat_out o;
    memset(&o, 0, sizeof o);
    o.buf = buf;
    o.cap = cap;
    ds__chat_render(sp, msgs, n, add_assistant, &o);
    *len = o.pos;
    if (o.pos >= cap) return ds__fail(DS_ERR_BOUNDS, "chat: the text needs %zu bytes and a NUL, the buffer has %zu", o.pos, cap);
    buf[o.pos] = 0;
    return DS_OK;
}

DS_API ds_status ds_chat_apply(const ds_model *m, ds_chat_template tmpl, const ds_chat_message *msgs, int n, int add_assistant, char *buf, size_t cap, size_t *len) {
    ds__chat_spec sp;
    ds_status st;
    if (!len || (cap && !buf)) return ds__fail(DS_ERR_INVALID_ARG, "chat: bad arguments");
    if ((st = ds__chat_check(msgs, n)) != DS_OK || (st = ds__chat_spec_of(m, tmpl, &sp)) != DS_OK) return st;
    return ds__chat_apply_spec(&sp, msgs, n, add_assistant, buf, cap, len);
}

DS_API ds_status ds_chat_apply_source(const char *source, size_t source_len, const ds_chat_message *msgs, int n, int add_assistant, char *buf, size_t cap, size_t *len) {
    ds__chat_spec sp;
    ds_status st;
    if (!source || !len || (cap && !buf)) return ds__fail(DS_ERR_INVALID_ARG, "chat: bad arguments");
    if ((st = ds__chat_check(msgs, n)) != DS_OK) return st;
    if (ds__chat_detect(source, source_len, &sp) < 0) return ds__fail(DS_ERR_UNSUPPORTED, "chat: the template is none we know (ChatML, Llama-3, DeepSeek-V2, DeepSeek-V3)");
    return ds__chat_apply_spec(&sp, msgs, n, add_assistant, buf, cap, len);
}

/* appends the ids of text[0..len) (a template special token when special) to ids */
static ds_status ds__chat_ids(const ds_tokenizer *t, const char *text, size_t len, int special, int flags, int32_t *ids, size_t cap, size_t *n) {
    size_t got = 0;
    int32_t id = special ? ds_tokenizer_find(t, text, len) : -1;
    ds_status st;
    if (id >= 0) {
        if (*n < cap) ids[*n] = id;
        *n += 1;
        return DS_OK;
    }
    if (special) flags |= DS_TOKENIZE_PARSE_SPECIAL;  /* a vocabulary that spells it differently */
    st = ds_tokenize(t, text, len, flags, *n < cap ? ids + *n : NULL, *n < cap ? cap - *n : 0, &got);
    if (st != DS_OK && st != DS_ERR_BOUNDS) return st;
    *n += got;
    return DS_OK;
}

DS_API ds_status ds_chat_tokenize(const ds_model *m, ds_chat_template tmpl, const ds_chat_message *msgs, int n, int add_assistant, int flags, int32_t *ids, size_t cap, size_t *n_out) {
    ds__chat_spec sp;
    ds__chat_out o;
    const ds_tokenizer *t;
    size_t k = 0, at = 0, i;
    int32_t bos;
    ds_status st = DS_OK;
    if (!m || !n_out || (cap && !ids)) return ds__fail(DS_ERR_INVALID_ARG, "chat: bad arguments");
    *n_out = 0;
    if ((st = ds__chat_check(msgs, n)) != DS_OK || (st = ds__chat_spec_of(m, tmpl, &sp)) != DS_OK) return st;
    t = m->tok;
    bos = ds_tokenizer_bos(t);
    memset(&o, 0, sizeof o);
    ds__chat_render(&sp, msgs, n, add_assistant, &o);   /* measures */
    o.cap = o.pos + 1;
    o.mark_cap = o.n_marks;
    o.buf = DS__CAST(char *, ds_alloc(o.cap));
    o.marks = DS__CAST(size_t *, ds_alloc((o.mark_cap + 1) * sizeof(size_t)));
    if (!o.buf || !o.marks) st = ds__fail(DS_ERR_NO_MEMORY, "chat: out of memory");
    if (st == DS_OK) {
        o.pos = o.n_marks = 0;
        ds__chat_render(&sp, msgs, n, add_assistant, &o);
        if (ds_tokenizer_adds_bos(t) && bos >= 0 && !(o.n_marks && o.marks[0] == 0 && ds_tokenizer_find(t, o.buf, o.marks[1]) == bos)) {
            if (k < cap) ids[k] = bos;
            k++;
        }
        flags &= DS_TOKENIZE_PARSE_SPECIAL;
        for (i = 0; i <= o.n_marks && st == DS_OK; i += 2) {
            size_t end = i < o.n_marks ? o.marks[i] : o.pos;
            if (end > at) st = ds__chat_ids(t, o.buf + at, end - at, 0, flags, ids, cap, &k);
            if (i < o.n_marks && st == DS_OK) st = ds__chat_ids(t, o.buf + o.marks[i], o.marks[i + 1] - o.marks[i], 1, flags, ids, cap, &k);
            if (i < o.n_marks) at = o.marks[i + 1];
        }
    }
    ds_free(o.buf);
    ds_free(o.marks);
    if (st != DS_OK) return st;
    *n_out = k;
    if (k > cap) return ds__fail(DS_ERR_BOUNDS, "chat: %zu tokens do not fit in %zu", k, cap);
    return DS_OK;
}

// >>lora
/* ---- LoRA adapters: the two formats, validation, the session's low-rank products, merging --- */
typedef struct ds__lora_target {
    const char *gguf;   /* blk.N.<gguf>.weight */
    const char *hf;     /* model.layers.N.<hf> */
    int slot;           /* its place in a session's per-layer table; -1: only merging applies it */
} ds__lora_target;
static const ds__lora_target ds__lora_targets[] = {
    {"attn_q", "self_attn.q_proj", 0}, {"attn_k", "self_attn.k_proj", 1}, {"attn_v", "self_attn.v_proj", 2},
    {"attn_output", "self_attn.o_proj", 3}, {"ffn_gate", "mlp.gate_proj", 4}, {"ffn_up", "mlp.up_proj", 5},
    {"ffn_down", "mlp.down_proj", 6}, {"attn_q_a", "self_attn.q_a_proj", -1}, {"attn_q_b", "self_attn.q_b_proj", -1},
    {"attn_kv_a_mqa", "self_attn.kv_a_proj_with_mqa", -1}, {"attn_kv_b", "self_attn.kv_b_proj", -1},
    {"ffn_gate_shexp", "mlp.shared_experts.gate_proj", -1}, {"ffn_up_shexp", "mlp.shared_experts.up_proj", -1},
    {"ffn_down_shexp", "mlp.shared_experts.down_proj", -1}};
#define DS__LORA_N_TARGETS ((int)(sizeof ds__lora_targets / sizeof ds__lora_targets[0]))
enum { DS__LORA_Q = 0, DS__LORA_K = 1 };   /* the targets whose rows a llama's conversion permutes */

typedef struct ds__lora_pair {
    int layer, target;    /* blk.layer, ds__lora_targets[target] */
    int r;
    int64_t in, out;
    float *a;             /* (r, in) */
    float *bt;            /* (r, out): B transposed, so applying it is r axpys */
} ds__lora_pair;

struct ds_lora_adapter {
    char arch[32];        /* the base's architecture ("": a PEFT adapter loaded without its base) */
    float alpha;          /* 0: alpha = r (no alpha key: llama.cpp's scale of 1) */
    int n_head, n_head_kv;    /* of the base it was loaded with (0: not known) */
    int hf_rows;          /* 1: attn_q / attn_k rows of B in Hugging Face order */
    char base_name[256];  /* PEFT base_model_name_or_path */
    ds__lora_pair *p;
    int n, cap;
    char what[160];       /* the file, for messages */
};

struct ds__lora_use {
    const ds__lora_pair *p;
    float scale;          /* the session's scale times alpha / r */
};

DS_API void ds_lora_adapter_free(ds_lora_adapter *a) {
    int i;
    if (!a) return;
    for (i = 0; i < a->n; i++) {
        ds_free(a->p[i].a);
        ds_free(a->p[i].bt);
    }
    ds_free(a->p);
    ds_free(a);
}
DS_API float ds_lora_adapter_alpha(const ds_lora_adapter *a) { return a ? a->alpha : 0.0f; }
DS_API int ds_lora_adapter_n_pairs(const ds_lora_adapter *a) { return a ? a->n : 0; }
DS_API int ds_lora_adapter_rank(const ds_lora_adapter *a) {
    int i, r = 0;
    for (i = 0; a && i < a->n; i++) r = DS__MAX(r, a->p[i].r);
    return r;
}

static float ds__lora_factor(const ds_lora_adapter *a, const ds__lora_pair *p) { return (a->alpha > 0 ? a->alpha : (float)p->r) / (float)p->r; }
static int ds__lora_is_llama(const char *arch) { return !strcmp(arch, "llama"); }

/* "blk.N.W.weight" + suffix: the layer and target, or 0 when name is not of that form */
static int ds__lora_parse_gguf(const char *name, const char *suffix, int *layer, int *target) {
    char w[40];
    int k, n = 0;
    long l;
    char *end;
    if (strncmp(name, "blk.", 4) || name[4] < '0' || name[4] > '9') return 0;
    l = strtol(name + 4, &end, 10);
    if (end == name + 4 || *end != '.' || l < 0 || l >= DS_MAX_LAYERS || (name[4] == '0' && end != name + 5)) return 0;
    for (end++; end[n] && end[n] != '.' && n < (int)sizeof w - 1; n++) w[n] = end[n];
    w[n] = 0;
    if (strncmp(end + n, ".weight", 7) || strcmp(end + n + 7, suffix)) return 0;
    for (k = 0; k < DS__LORA_N_TARGETS; k++)
        if (!strcmp(w, ds__lora_targets[k].gguf)) break;
    *layer = (int)l;
    *target = k;   /* DS__LORA_N_TARGETS: well-formed, unknown matrix */
    return 1;
}

/* "base_model.model.model.layers.N.<hf>.lora_X.weight" */
static int ds__lora_parse_peft(const char *name, const char *suffix, int *layer, int *target) {
    static const char pre[] = "base_model.model.model.layers.";
    size_t np = sizeof pre - 1, ns = strlen(suffix), n = strlen(name), m;
    long l;
    char *end;
    int k;
    if (n < np + ns || strncmp(name, pre, np) || strcmp(name + n - ns, suffix) || name[np] < '0' || name[np] > '9') return 0;
    l = strtol(name + np, &end, 10);
    if (end == name + np || *end != '.' || l < 0 || l >= DS_MAX_LAYERS) return 0;
    end++;
    m = (size_t)(name + n - ns - end);
    *layer = (int)l;
    *target = DS__LORA_N_TARGETS;
    for (k = 0; k < DS__LORA_N_TARGETS; k++)
        if (strlen(ds__lora_targets[k].hf) == m && !strncmp(end, ds__lora_targets[k].hf, m)) *target = k;
    return 1;
}

/* A (r, in) and B (out, r) of type t (maybe unaligned) into a new pair */
static ds_status ds__lora_add(ds_lora_adapter *ad, const char *name, int layer, int target, int64_t r, int64_t in, int64_t out, ds_type t, const void *a, const void *b) {
    ds__lora_pair *p;
    float *tmp;
    void *raw;
    uint64_t na, nb;
    int64_t i, q;
    if (r < 1) return ds__fail(DS_ERR_FORMAT, "%s: tensor '%s': rank 0", ad->what, name);
    if (r > 65536 || in < 1 || out < 1 || in > INT_MAX || out > INT_MAX) return ds__fail(DS_ERR_FORMAT, "%s: tensor '%s': shape out of range (r %lld, in %lld, out %lld)", ad->what, name, (long long)r, (long long)in, (long long)out);
    if (t != DS_TYPE_F32 && t != DS_TYPE_F16 && t != DS_TYPE_BF16 && t != DS_TYPE_Q8_0) return ds__fail(DS_ERR_UNSUPPORTED, "%s: tensor '%s': type %s (F32, F16, BF16 or Q8_0)", ad->what, name, ds_type_name(t));
    if (ds_type_nbytes(t, r * in, &na) != DS_OK || ds_type_nbytes(t, r * out, &nb) != DS_OK) return ds__fail(DS_ERR_FORMAT, "%s: tensor '%s': rows are not whole %s blocks", ad->what, name, ds_type_name(t));
    for (i = 0; i < ad->n; i++)
        if (ad->p[i].layer == layer && ad->p[i].target == target) return ds__fail(DS_ERR_FORMAT, "%s: tensor '%s': its matrix is adapted twice", ad->what, name);
    if (ad->n == ad->cap) {
        int cap = ad->cap ? 2 * ad->cap : 16;
        ds__lora_pair *np = DS__CAST(ds__lora_pair *, ds__calloc((size_t)cap, sizeof *np));
        if (!np) return ds__fail(DS_ERR_NO_MEMORY, "%s: out of memory", ad->what);
        if (ad->n) memcpy(np, ad->p, (size_t)ad->n * sizeof *np);
        ds_free(ad->p);
        ad->p = np;
        ad->cap = cap;
    }
    p = &ad->p[ad->n];
    memset(p, 0, sizeof *p);
    p->layer = layer;
    p->target = target;
    p->r = (int)r;
    p->in = in;
    p->out = out;
    p->a = DS__CAST(float *, ds_alloc((size_t)(r * in) * sizeof(float)));
    p->bt = DS__CAST(float *, ds_alloc((size_t)(r * out) * sizeof(float)));
    tmp = DS__CAST(float *, ds_alloc((size_t)(r * out) * sizeof(float)));
    raw = ds_alloc((size_t)DS__MAX(na, nb));
    if (p->a && p->bt) ad->n++;   /* owned from here on */
    if (!p->a || !p->bt || !tmp || !raw) {
        if (!(p->a && p->bt)) {
            ds_free(p->a);
            ds_free(p->bt);
        }
        ds_free(tmp);
        ds_free(raw);
        return ds__fail(DS_ERR_NO_MEMORY, "%s: out of memory", ad->what);
    }
    memcpy(raw, a, (size_t)na);   /* aligned copies: safetensors data need not be */
    ds__dequantize_row(t, raw, p->a, r * in);
    memcpy(raw, b, (size_t)nb);
    ds__dequantize_row(t, raw, tmp, r * out);
    for (i = 0; i < out; i++)
        for (q = 0; q < r; q++) p->bt[q * out + i] = tmp[i * r + q];
    ds_free(tmp);
    ds_free(raw);
    for (i = 0; i < r * (in + out); i++)
        if (!isfinite(i < r * in ? p->a[i] : p->bt[i - r * in])) return ds__fail(DS_ERR_FORMAT, "%s: tensor '%s': holds a NaN or infinity", ad->what, name);
    return DS_OK;
}

static ds_status ds__lora_load_gguf(ds_lora_adapter *ad, const char *path) {
    ds_gguf *g = NULL;
    ds_str str;
    ds_status s;
    int64_t i;
    if ((s = ds_gguf_open(path, &g)) != DS_OK) {   /* the reader's message lacks the path */
        char msg[512];
        snprintf(msg, sizeof msg, "%s", ds_last_error());
        return ds__fail(s, "%s: %s", ad->what, msg);
    }
    if (ds_gguf_get_str(g, "general.type", &str) != DS_OK || !ds__str_is(str, "adapter"))
        s = ds__fail(DS_ERR_FORMAT, "%s: key 'general.type' is not \"adapter\" (a model, not a LoRA adapter?)", ad->what);
    else if (ds_gguf_get_str(g, "adapter.type", &str) != DS_OK || !ds__str_is(str, "lora"))
        s = ds__fail(DS_ERR_UNSUPPORTED, "%s: key 'adapter.type' is not \"lora\"", ad->what);
    else if (ds_gguf_get_str(g, "general.architecture", &str) != DS_OK || str.len == 0 || str.len >= sizeof ad->arch)
        s = ds__fail(DS_ERR_FORMAT, "%s: key 'general.architecture' is missing or too long", ad->what);
    if (s == DS_OK) {
        memcpy(ad->arch, str.ptr, str.len);
        if (ds_gguf_find(g, "adapter.lora.alpha") &&
            (ds_gguf_get_f32(g, "adapter.lora.alpha", &ad->alpha) != DS_OK || !(ad->alpha > 0) || !(ad->alpha < 1e30f)))
            s = ds__fail(DS_ERR_FORMAT, "%s: key 'adapter.lora.alpha' is not a positive float", ad->what);
    }
    for (i = 0; s == DS_OK && i < ds_gguf_n_tensors(g); i++) {
        const ds_gguf_tensor *t = ds_gguf_tensor_at(g, i), *b;
        char name[DS__GGUF_MAX_NAME + 8];
        int layer, target, is_a;
        size_t len = DS__MIN(t->name.len, sizeof name - 1);
        memcpy(name, t->name.ptr, len);
        name[len] = 0;
        is_a = ds__lora_parse_gguf(name, ".lora_a", &layer, &target);
        if (!is_a && !ds__lora_parse_gguf(name, ".lora_b", &layer, &target)) {
            s = ds__fail(DS_ERR_FORMAT, "%s: tensor '%s' is not blk.N.W.weight.lora_a or .lora_b", ad->what, name);
            break;
        }
        if (target == DS__LORA_N_TARGETS) {
            s = ds__fail(DS_ERR_UNSUPPORTED, "%s: tensor '%s': unknown target matrix", ad->what, name);
            break;
        }
        memcpy(name + len - 1, is_a ? "b" : "a", 2);   /* the partner */
        b = ds_gguf_find_tensor(g, name);
        name[len - 1] = is_a ? 'a' : 'b';
        if (!b) {
            s = ds__fail(DS_ERR_FORMAT, "%s: tensor '%s' has no .lora_%c partner", ad->what, name, is_a ? 'b' : 'a');
            break;
        }
        if (!is_a) continue;   /* pairs are read from their A */
        if (t->n_dims != 2 || b->n_dims != 2) {
            s = ds__fail(DS_ERR_FORMAT, "%s: tensor '%s': lora_a and lora_b must be matrices", ad->what, name);
            break;
        }
        if (t->ne[1] != b->ne[0]) {
            s = ds__fail(DS_ERR_FORMAT, "%s: tensor '%s': r mismatch: lora_a has r = %lld, lora_b %lld", ad->what, name, (long long)t->ne[1], (long long)b->ne[0]);
            break;
        }
        if (t->type != b->type) {
            s = ds__fail(DS_ERR_UNSUPPORTED, "%s: tensor '%s': lora_a is %s, lora_b %s", ad->what, name, ds_type_name(t->type), ds_type_name(b->type));
            break;
        }
        s = ds__lora_add(ad, name, layer, target, t->ne[1], t->ne[0], b->ne[1], t->type, t->data, b->data);
    }
    ds_gguf_free(g);
    return s;
}

static int ds__is_dir(const char *path) {
#if defined(_WIN32)
    DWORD at = GetFileAttributesA(path);
    return at != INVALID_FILE_ATTRIBUTES && (at & FILE_ATTRIBUTE_DIRECTORY);
#else
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
#endif
}
static int ds__make_dir(const char *path) {
    if (ds__is_dir(path)) return 1;
#if defined(_WIN32)
    return CreateDirectoryA(path, NULL) != 0;
#else
    return mkdir(path, 0777) == 0;
#endif
}

/* dir/file, or the file beside path (a file) */
static void ds__lora_sibling(char *out, size_t cap, const char *path, int is_dir, const char *file) {
    const char *slash = strrchr(path, '/');
    int n = is_dir ? (int)strlen(path) : slash ? (int)(slash - path) : 0;
    if (n) snprintf(out, cap, "%.*s/%s", n, path, file);
    else snprintf(out, cap, "%s", file);
}

/* adapter_config.json: r, lora_alpha and the options we must refuse */
static ds_status ds__lora_peft_config(ds_lora_adapter *ad, const char *path, int *r) {
    ds_mapped_file f;
    ds__json d;
    uint32_t v;
    ds_status s;
    double x;
    if ((s = ds_map_file(path, &f)) != DS_OK) return s;
    if ((s = ds__json_parse(DS__CAST(const char *, f.data), f.size, path, &d)) != DS_OK) {
        ds_unmap_file(&f);
        return s;
    }
    if (d.nodes[0].type != DS__JSON_OBJECT) s = ds__fail(DS_ERR_FORMAT, "%s: not a JSON object", path);
    else if ((v = ds__json_get(&d, 0, "peft_type")) && !ds__json_str_eq(&d, v, "LORA")) s = ds__fail(DS_ERR_UNSUPPORTED, "%s: key 'peft_type' is not \"LORA\"", path);
    else if (!(v = ds__json_get(&d, 0, "r")) || d.nodes[v].type != DS__JSON_NUMBER || (x = d.nodes[v].num, x != floor(x) || x < 0 || x > 65536))
        s = ds__fail(DS_ERR_FORMAT, "%s: key 'r' is missing or not an integer in [1, 65536]", path);
    else if (x == 0) s = ds__fail(DS_ERR_FORMAT, "%s: key 'r': rank 0", path);
    else {
        *r = (int)x;
        if (!(v = ds__json_get(&d, 0, "lora_alpha")) || d.nodes[v].type != DS__JSON_NUMBER || !(d.nodes[v].num > 0) || d.nodes[v].num > 1e30)
            s = ds__fail(DS_ERR_FORMAT, "%s: key 'lora_alpha' is missing or not a positive number", path);
        else ad->alpha = (float)d.nodes[v].num;
    }
    if (s == DS_OK && (v = ds__json_get(&d, 0, "use_rslora")) && d.nodes[v].type == DS__JSON_TRUE) ad->alpha *= sqrtf((float)*r);   /* scale alpha / sqrt(r) */
    if (s == DS_OK && (v = ds__json_get(&d, 0, "use_dora")) && d.nodes[v].type == DS__JSON_TRUE) s = ds__fail(DS_ERR_UNSUPPORTED, "%s: key 'use_dora': DoRA adapters are not supported", path);
    if (s == DS_OK && (v = ds__json_get(&d, 0, "fan_in_fan_out")) && d.nodes[v].type == DS__JSON_TRUE) s = ds__fail(DS_ERR_UNSUPPORTED, "%s: key 'fan_in_fan_out' (transposed Conv1D weights) is not supported", path);
    if (s == DS_OK && (((v = ds__json_get(&d, 0, "rank_pattern")) && d.nodes[v].n) || ((v = ds__json_get(&d, 0, "alpha_pattern")) && d.nodes[v].n)))
        s = ds__fail(DS_ERR_UNSUPPORTED, "%s: per-module rank_pattern / alpha_pattern are not supported", path);
    if (s == DS_OK && (v = ds__json_get(&d, 0, "base_model_name_or_path")) && d.nodes[v].type == DS__JSON_STRING && d.nodes[v].n < sizeof ad->base_name)
        ad->base_name[ds__json_str(&d, v, ad->base_name)] = 0;
    ds__json_free(&d);
    ds_unmap_file(&f);
    return s;
}

static ds_status ds__lora_load_peft(ds_lora_adapter *ad, const char *path) {
    char st_path[4096], cfg_path[4096];
    int is_dir = ds__is_dir(path), r = 0;
    ds_safetensors *st = NULL;
    ds_status s;
    int64_t i;
    if (is_dir) ds__lora_sibling(st_path, sizeof st_path, path, 1, "adapter_model.safetensors");
    else snprintf(st_path, sizeof st_path, "%s", path);
    ds__lora_sibling(cfg_path, sizeof cfg_path, path, is_dir, "adapter_config.json");
    if ((s = ds__lora_peft_config(ad, cfg_path, &r)) != DS_OK) return s;
    if ((s = ds_safetensors_open(st_path, &st)) != DS_OK) return s;
    snprintf(ad->what, sizeof ad->what, "lora '%.140s'", st_path);
    ad->hf_rows = 1;
    for (i = 0; s == DS_OK && i < ds_safetensors_n_tensors(st); i++) {
        const ds_st_tensor *t = ds_safetensors_tensor_at(st, i), *b;
        char name[512];
        int layer, target;
        size_t len = strlen(t->name);
        if (ds__lora_parse_peft(t->name, ".lora_B.weight", &layer, &target)) continue;   /* read with its A */
        if (!ds__lora_parse_peft(t->name, ".lora_A.weight", &layer, &target)) {
            s = ds__fail(DS_ERR_FORMAT, "%s: tensor '%.200s' is not base_model.model.model.layers.N.MODULE.lora_A/B.weight", ad->what, t->name);
            break;
        }
        if (target == DS__LORA_N_TARGETS) {
            s = ds__fail(DS_ERR_UNSUPPORTED, "%s: tensor '%.200s': unknown target module", ad->what, t->name);
            break;
        }
        if (len >= sizeof name) continue;   /* cannot parse as a known target this long */
        memcpy(name, t->name, len + 1);
        name[len - 8] = 'B';   /* ...lora_B.weight */
        if (!(b = ds_safetensors_find(st, name))) {
            s = ds__fail(DS_ERR_FORMAT, "%s: tensor '%s' has no lora_B partner", ad->what, t->name);
            break;
        }
        if (t->n_dims != 2 || b->n_dims != 2 || t->type != b->type || t->type == DS_TYPE_COUNT_) {
            s = ds__fail(DS_ERR_FORMAT, "%s: tensor '%s': lora_A and lora_B must be F32, F16 or BF16 matrices of one dtype", ad->what, t->name);
            break;
        }
        if (t->shape[0] != r || b->shape[1] != r) {
            s = ds__fail(DS_ERR_FORMAT, "%s: tensor '%s': r mismatch: adapter_config.json says r = %d, lora_A has %lld, lora_B %lld", ad->what, t->name, r, (long long)t->shape[0], (long long)b->shape[1]);
            break;
        }
        s = ds__lora_add(ad, t->name, layer, target, r, t->shape[1], b->shape[0], t->type, t->data, b->data);
    }
    /* every B must have had its A */
    for (i = 0; s == DS_OK && i < ds_safetensors_n_tensors(st); i++) {
        const ds_st_tensor *t = ds_safetensors_tensor_at(st, i);
        char name[512];
        int layer, target;
        size_t len = strlen(t->name);
        if (!ds__lora_parse_peft(t->name, ".lora_B.weight", &layer, &target)) continue;
        if (len >= sizeof name) {
            s = ds__fail(DS_ERR_FORMAT, "%s: tensor name of %zu bytes is too long", ad->what, len);
            break;
        }
        memcpy(name, t->name, len + 1);
        name[len - 8] = 'A';
        if (!ds_safetensors_find(st, name)) s = ds__fail(DS_ERR_FORMAT, "%s: tensor '%s' has no lora_A partner", ad->what, t->name);
    }
    ds_safetensors_free(st);
    return s;
}

/* Rows of a llama's q or k projection between Hugging Face's order and GGUF's: within each head
   of D rows, Hugging Face row h * D / 2 + i (h the half) is GGUF row 2 i + h. Works on the
   columns of bt (r, out). */
static void ds__lora_permute(float *dst, const float *src, int r, int64_t out, int n_head, int to_gguf) {
    int64_t D = out / n_head, half = D / 2, hd, i, q;
    int h;
    for (q = 0; q < r; q++)
        for (hd = 0; hd < n_head; hd++)
            for (i = 0; i < half; i++)
                for (h = 0; h < 2; h++) {
                    int64_t g = q * out + hd * D + 2 * i + h, f = q * out + hd * D + h * half + i;
                    if (to_gguf) dst[g] = src[f];
                    else dst[f] = src[g];
                }
}

/* the head count whose rows target t permutes (0: none) */
static int ds__lora_heads(const ds_lora_adapter *a, int target) {
    return target == DS__LORA_Q ? a->n_head : target == DS__LORA_K ? a->n_head_kv : 0;
}
static int ds__lora_has_qk(const ds_lora_adapter *a) {
    int i;
    for (i = 0; i < a->n; i++)
        if (a->p[i].target == DS__LORA_Q || a->p[i].target == DS__LORA_K) return 1;
    return 0;
}

/* The pairs against a base file g of architecture arch (shapes, names, row order). */
static ds_status ds__lora_check_gguf(const ds_lora_adapter *a, const ds_gguf *g, const char *arch) {
    int i;
    if (a->arch[0] && strcmp(a->arch, arch)) return ds__fail(DS_ERR_FORMAT, "%s: the adapter is for a %s model, the base is %s", a->what, a->arch, arch);
    if (a->hf_rows && ds__lora_is_llama(arch) && ds__lora_has_qk(a))
        return ds__fail(DS_ERR_STATE, "%s: a PEFT adapter's q_proj / k_proj rows need the llama base's head counts: load it with its base model", a->what);
    for (i = 0; i < a->n; i++) {
        const ds__lora_pair *p = &a->p[i];
        char name[96];
        const ds_gguf_tensor *t;
        snprintf(name, sizeof name, "blk.%d.%s.weight", p->layer, ds__lora_targets[p->target].gguf);
        t = ds_gguf_find_tensor(g, name);
        if (!t) return ds__fail(DS_ERR_FORMAT, "%s: tensor '%s.lora_a': the base has no '%s'", a->what, name, name);
        if (t->n_dims != 2 || t->ne[0] != p->in || t->ne[1] != p->out)
            return ds__fail(DS_ERR_FORMAT, "%s: tensor '%s.lora_a': adapts a [%lld, %lld] matrix, the base's is [%lld, %lld]", a->what, name, (long long)p->in, (long long)p->out,
                            (long long)t->ne[0], (long long)(t->n_dims > 1 ? t->ne[1] : 1));
    }
    return DS_OK;
}

DS_API ds_status ds_lora_adapter_check(const ds_lora_adapter *a, const ds_model *m) {
    if (!a || !m) return ds__fail(DS_ERR_INVALID_ARG, "lora: NULL argument");
    return ds__lora_check_gguf(a, m->gguf, m->cfg.arch);
}

/* takes base's architecture and head counts; a llama PEFT adapter's q / k rows go to GGUF order */
static ds_status ds__lora_bind(ds_lora_adapter *a, const ds_model *m) {
    int i;
    if (!a->arch[0]) snprintf(a->arch, sizeof a->arch, "%s", m->cfg.arch);
    a->n_head = m->cfg.n_head;
    a->n_head_kv = m->cfg.n_head_kv;
    if (a->hf_rows && ds__lora_is_llama(a->arch))
        for (i = 0; i < a->n; i++) {
            ds__lora_pair *p = &a->p[i];
            int nh = ds__lora_heads(a, p->target);
            float *bt;
            if (!nh) continue;
            if (p->out % (2 * nh)) return ds__fail(DS_ERR_FORMAT, "%s: %s of layer %d: %lld rows do not split into %d heads", a->what, ds__lora_targets[p->target].hf, p->layer, (long long)p->out, nh);
            if (!(bt = DS__CAST(float *, ds_alloc((size_t)(p->r * p->out) * sizeof(float))))) return ds__fail(DS_ERR_NO_MEMORY, "%s: out of memory", a->what);
            ds__lora_permute(bt, p->bt, p->r, p->out, nh, 1);
            ds_free(p->bt);
            p->bt = bt;
        }
    a->hf_rows = 0;
    return ds_lora_adapter_check(a, m);
}

DS_API ds_status ds_lora_adapter_load(const char *path, const ds_model *base, ds_lora_adapter **out) {
    ds_lora_adapter *a;
    ds_status s;
    uint8_t magic[4] = {0, 0, 0, 0};
    FILE *f;
    if (!path || !out) return ds__fail(DS_ERR_INVALID_ARG, "lora: NULL argument");
    *out = NULL;
    if (!(a = DS__CAST(ds_lora_adapter *, ds__calloc(1, sizeof *a)))) return ds__fail(DS_ERR_NO_MEMORY, "lora: out of memory");
    snprintf(a->what, sizeof a->what, "lora '%.140s'", path);
    if (!ds__is_dir(path)) {
        if (!(f = fopen(path, "rb"))) {
            ds_lora_adapter_free(a);
            return ds__fail(DS_ERR_IO, "lora '%s': cannot open: %s", path, strerror(errno));
        }
        if (fread(magic, 1, 4, f) != 4) magic[0] = 0;
        fclose(f);
    }
    s = !memcmp(magic, "GGUF", 4) ? ds__lora_load_gguf(a, path) : ds__lora_load_peft(a, path);
    if (s == DS_OK && a->n == 0) s = ds__fail(DS_ERR_FORMAT, "%s: no LoRA tensors", a->what);
    if (s == DS_OK && base) s = ds__lora_bind(a, base);
    if (s != DS_OK) {
        ds_lora_adapter_free(a);
        return s;
    }
    *out = a;
    return DS_OK;
}

/* B (out, r) of pair p in the order a file of the given format stores, into a new buffer */
static float *ds__lora_b_rows(const ds_lora_adapter *a, const ds__lora_pair *p, int peft) {
    size_t n = (size_t)(p->r * p->out);
    float *bt = DS__CAST(float *, ds_alloc(n * sizeof(float))), *b = DS__CAST(float *, ds_alloc(n * sizeof(float)));
    int nh = ds__lora_heads(a, p->target);
    int64_t i, q;
    if (!bt || !b) {
        ds_free(bt);
        ds_free(b);
        return NULL;
    }
    if (nh && ds__lora_is_llama(a->arch) && peft != a->hf_rows) ds__lora_permute(bt, p->bt, p->r, p->out, nh, !peft);
    else memcpy(bt, p->bt, n * sizeof(float));
    for (i = 0; i < p->out; i++)
        for (q = 0; q < p->r; q++) b[i * p->r + q] = bt[q * p->out + i];
    ds_free(bt);
    return b;
}

typedef struct ds__bytes_job { const void *p; size_t n; } ds__bytes_job;
static void ds__emit_bytes(ds__gguf_out *o, void *ctx) {
    ds__bytes_job *j = DS__CAST(ds__bytes_job *, ctx);
    ds__gguf_emit(o, j->p, j->n);
}

static ds_status ds__lora_save_peft(const ds_lora_adapter *a, const char *path, float **bs) {
    ds_st_write *t = DS__CAST(ds_st_write *, ds__calloc(2 * (size_t)a->n, sizeof *t));
    char (*names)[160] = DS__CAST(char (*)[160], ds__calloc(2 * (size_t)a->n, 160));
    char file[4096];
    const char *meta[2] = {"format", "pt"};
    ds__buf js;
    ds__bytes_job bj;
    ds_status s = DS_OK;
    int i, k, seen[DS__LORA_N_TARGETS];
    memset(&js, 0, sizeof js);
    memset(seen, 0, sizeof seen);
    if (!t || !names) s = ds__fail(DS_ERR_NO_MEMORY, "lora: out of memory");
    for (i = 0; s == DS_OK && i < a->n; i++) {
        const ds__lora_pair *p = &a->p[i];
        if (p->r != a->p[0].r) s = ds__fail(DS_ERR_UNSUPPORTED, "%s: PEFT files have one rank; pairs have %d and %d", a->what, a->p[0].r, p->r);
        for (k = 0; k < 2; k++) {
            ds_st_write *w = &t[2 * i + k];
            snprintf(names[2 * i + k], 160, "base_model.model.model.layers.%d.%s.lora_%c.weight", p->layer, ds__lora_targets[p->target].hf, k ? 'B' : 'A');
            w->name = names[2 * i + k];
            w->type = DS_TYPE_F32;
            w->n_dims = 2;
            w->shape[0] = k ? p->out : p->r;
            w->shape[1] = k ? p->r : p->in;
            w->data = k ? bs[i] : p->a;
        }
        seen[p->target] = 1;
    }
    if (s == DS_OK && !ds__make_dir(path)) s = ds__fail(DS_ERR_IO, "lora: cannot create the folder '%s': %s", path, strerror(errno));
    if (s == DS_OK) {
        ds__lora_sibling(file, sizeof file, path, 1, "adapter_model.safetensors");
        s = ds_safetensors_write(file, t, 2 * a->n, meta, 1);
    }
    if (s == DS_OK) {
        const char *mod;
        int first = 1;
        ds__buf_puts(&js, "{\n  \"base_model_name_or_path\": ");
        ds__json_write_str(&js, a->base_name, strlen(a->base_name));
        ds__buf_printf(&js, ",\n  \"bias\": \"none\",\n  \"fan_in_fan_out\": false,\n  \"inference_mode\": true,\n  \"lora_alpha\": %.9g,\n  \"lora_dropout\": 0.0,\n",
                       (double)(a->alpha > 0 ? a->alpha : (float)a->p[0].r));
        ds__buf_printf(&js, "  \"peft_type\": \"LORA\",\n  \"r\": %d,\n  \"target_modules\": [", a->p[0].r);
        for (k = 0; k < DS__LORA_N_TARGETS; k++) {
            if (!seen[k]) continue;
            mod = strrchr(ds__lora_targets[k].hf, '.') + 1;
            for (i = 0; i < k; i++)   /* shared experts repeat the dense names */
                if (seen[i] && !strcmp(strrchr(ds__lora_targets[i].hf, '.') + 1, mod)) break;
            if (i < k) continue;
            ds__buf_printf(&js, "%s\"%s\"", first ? "" : ", ", mod);
            first = 0;
        }
        ds__buf_puts(&js, "],\n  \"task_type\": \"CAUSAL_LM\",\n  \"use_dora\": false,\n  \"use_rslora\": false\n}\n");
        if (js.oom) s = ds__fail(DS_ERR_NO_MEMORY, "lora: out of memory");
    }
    if (s == DS_OK) {
        ds__lora_sibling(file, sizeof file, path, 1, "adapter_config.json");
        bj.p = js.p;
        bj.n = js.n;
        s = ds__write_atomic(file, "lora", ds__emit_bytes, &bj);
    }
    ds__buf_free(&js);
    ds_free(t);
    ds_free(names);
    return s;
}

static ds_status ds__lora_save_gguf(const ds_lora_adapter *a, const char *path, float **bs) {
    ds_gguf_writer *w = NULL;
    ds_status s;
    int i;
    if ((s = ds_gguf_writer_create(&w)) != DS_OK) return s;
    if (!(s = ds_gguf_writer_set_str(w, "general.architecture", a->arch)) && !(s = ds_gguf_writer_set_str(w, "general.type", "adapter")) &&
        !(s = ds_gguf_writer_set_str(w, "adapter.type", "lora")) && a->alpha > 0)
        s = ds_gguf_writer_set_f32(w, "adapter.lora.alpha", a->alpha);
    for (i = 0; s == DS_OK && i < a->n; i++) {
        const ds__lora_pair *p = &a->p[i];
        char name[96];
        int64_t ne[2];
        snprintf(name, sizeof name, "blk.%d.%s.weight.lora_a", p->layer, ds__lora_targets[p->target].gguf);
        ne[0] = p->in;
        ne[1] = p->r;
        if ((s = ds_gguf_writer_add_tensor(w, name, DS_TYPE_F32, 2, ne, p->a)) != DS_OK) break;
        name[strlen(name) - 1] = 'b';
        ne[0] = p->r;
        ne[1] = p->out;
        s = ds_gguf_writer_add_tensor(w, name, DS_TYPE_F32, 2, ne, bs[i]);
    }
    if (s == DS_OK) s = ds_gguf_writer_write(w, path);
    ds_gguf_writer_free(w);
    return s;
}

DS_API ds_status ds_lora_adapter_save(const ds_lora_adapter *a, const char *path, ds_lora_format format) {
    float **bs;
    ds_status s = DS_OK;
    int i, peft = format == DS_LORA_PEFT;
    if (!a || !path || (format != DS_LORA_GGUF && !peft)) return ds__fail(DS_ERR_INVALID_ARG, "lora: bad argument to save");
    if (!peft && !a->arch[0]) return ds__fail(DS_ERR_STATE, "%s: the base architecture is not known: load the adapter with its base model", a->what);
    if (ds__lora_is_llama(a->arch) && !a->n_head && ds__lora_has_qk(a) && peft != a->hf_rows)
        return ds__fail(DS_ERR_STATE, "%s: converting a llama's q / k rows needs its head counts: load the adapter with its base model", a->what);
    if (!(bs = DS__CAST(float **, ds__calloc((size_t)a->n + 1, sizeof *bs)))) return ds__fail(DS_ERR_NO_MEMORY, "lora: out of memory");
    for (i = 0; i < a->n && s == DS_OK; i++)
        if (!(bs[i] = ds__lora_b_rows(a, &a->p[i], peft))) s = ds__fail(DS_ERR_NO_MEMORY, "lora: out of memory");
    if (s == DS_OK) s = peft ? ds__lora_save_peft(a, path, bs) : ds__lora_save_gguf(a, path, bs);
    for (i = 0; i < a->n; i++) ds_free(bs[i]);
    ds_free(bs);
    return s;
}

/* ---- the session's low-rank products ----------------------------------------------------------
   Uses of slot k = layer * DS__LORA_SLOTS + slot are lora[lora_at[k] .. lora_at[k + 1]). */
DS_API ds_status ds_session_set_lora(ds_session *s, ds_lora_adapter *const *a, const float *scales, int n) {
    const ds_model_config *c;
    int i, j, k, n_slots, n_use = 0, max_r = 1, same;
    int *at;
    ds__lora_use *use;
    float *u, *sc;
    ds_lora_adapter **src;
    ds_status st;
    if (!s || n < 0 || (n && !a)) return ds__fail(DS_ERR_INVALID_ARG, "lora: bad argument to ds_session_set_lora");
    c = &s->m->cfg;
    n_slots = c->n_layer * DS__LORA_SLOTS;
    for (i = 0; i < n; i++) {
        float f = scales ? scales[i] : 1.0f;
        if (!a[i] || !isfinite(f)) return ds__fail(DS_ERR_INVALID_ARG, "lora: adapter %d is NULL or its scale not finite", i);
        if ((st = ds_lora_adapter_check(a[i], s->m)) != DS_OK) return st;
        for (j = 0; j < a[i]->n; j++) {
            const ds__lora_pair *p = &a[i]->p[j];
            int slot = ds__lora_targets[p->target].slot;
            ds_layer_config lc = c->layers[p->layer];
            if (slot < 0 || (slot < 4 && lc.attn != DS_ATTN_DENSE) || (slot >= 4 && lc.ffn != DS_FFN_DENSE))
                return ds__fail(DS_ERR_UNSUPPORTED, "%s: blk.%d.%s: only merging applies adapters to this layer's matrices (ds_lora_merge)", a[i]->what, p->layer, ds__lora_targets[p->target].gguf);
            if (f != 0) n_use++;
            max_r = DS__MAX(max_r, p->r);
        }
    }
    same = n == s->lora_n;
    for (i = 0; same && i < n; i++) same = a[i] == s->lora_src[i] && (scales ? scales[i] : 1.0f) == s->lora_scales[i];
    if (same) return DS_OK;
    at = DS__CAST(int *, ds__calloc((size_t)n_slots + 1, sizeof *at));
    use = DS__CAST(ds__lora_use *, ds__calloc((size_t)n_use + 1, sizeof *use));
    u = DS__CAST(float *, ds_alloc((size_t)s->n_batch * (size_t)max_r * sizeof(float)));
    src = DS__CAST(ds_lora_adapter **, ds__calloc((size_t)n + 1, sizeof *src));
    sc = DS__CAST(float *, ds__calloc((size_t)n + 1, sizeof *sc));
    if (!at || !use || !u || !src || !sc) {
        ds_free(at);
        ds_free(use);
        ds_free(u);
        ds_free(src);
        ds_free(sc);
        return ds__fail(DS_ERR_NO_MEMORY, "lora: out of memory");
    }
    for (i = 0; i < n; i++) {   /* count per slot, then place (adapter order kept within a slot) */
        src[i] = a[i];
        sc[i] = scales ? scales[i] : 1.0f;
        for (j = 0; j < a[i]->n && sc[i] != 0; j++) at[a[i]->p[j].layer * DS__LORA_SLOTS + ds__lora_targets[a[i]->p[j].target].slot + 1]++;
    }
    for (k = 0; k < n_slots; k++) at[k + 1] += at[k];
    {
        int *fill = DS__CAST(int *, ds__calloc((size_t)n_slots + 1, sizeof *fill));
        if (!fill) {
            ds_free(at);
            ds_free(use);
            ds_free(u);
            ds_free(src);
            ds_free(sc);
            return ds__fail(DS_ERR_NO_MEMORY, "lora: out of memory");
        }
        for (i = 0; i < n; i++)
            for (j = 0; j < a[i]->n && sc[i] != 0; j++) {
                const ds__lora_pair *p = &a[i]->p[j];
                k = p->layer * DS__LORA_SLOTS + ds__lora_targets[p->target].slot;
                use[at[k] + fill[k]].p = p;
                use[at[k] + fill[k]++].scale = sc[i] * ds__lora_factor(a[i], p);
            }
        ds_free(fill);
    }
    ds__session_lora_free(s);
    s->lora = use;
    s->lora_at = n_use ? at : NULL;
    if (!n_use) ds_free(at);
    s->lora_u = u;
    s->lora_r = max_r;
    s->lora_src = src;
    s->lora_scales = sc;
    s->lora_n = n;
    s->pos = 0;   /* the cached keys and values came from other weights */
    return DS_OK;
}

typedef struct ds__lora_job {
    ds_session *s;
    float *y;
    const float *x;
    int T, k, in, out;
} ds__lora_job;

/* y (T, out) += scale * B (A x) for each use of slot k; u (T, lora_r) holds each token's A x */
static void ds__lora_task(void *ctx, int i, int n) {
    const ds__lora_job *j = DS__CAST(const ds__lora_job *, ctx);
    const ds_session *s = j->s;
    int t, e, q;
    for (t = j->T * i / n; t < j->T * (i + 1) / n; t++) {
        const float *x = j->x + (size_t)t * j->in;
        float *y = j->y + (size_t)t * j->out, *u = s->lora_u + (size_t)t * s->lora_r;
        for (e = s->lora_at[j->k]; e < s->lora_at[j->k + 1]; e++) {
            const ds__lora_pair *p = s->lora[e].p;
            for (q = 0; q < p->r; q++) u[q] = s->lora[e].scale * s->ops.dot(p->a + (size_t)q * j->in, x, j->in);
            for (q = 0; q < p->r; q++) s->ops.axpy(y, u[q], p->bt + (size_t)q * j->out, j->out);
        }
    }
}

static void ds__lora_apply(ds_session *s, float *y, const float *x, int T, int k, const ds__mat *w) {
    ds__lora_job j;
    int n = T < 8 ? 1 : DS__MIN(T, 4 * ds_pool_size(s->pool));
    if (!s->lora_at || k < 0 || s->lora_at[k] == s->lora_at[k + 1]) return;
    j.s = s;
    j.y = y;
    j.x = x;
    j.T = T;
    j.k = k;
    j.in = (int)w->cols;
    j.out = (int)w->rows;
    if (n == 1) ds__lora_task(&j, 0, 1);
    else ds_pool_run(s->pool, ds__lora_task, &j, n);
}

static void ds__session_lora_free(ds_session *s) {
    ds_free(s->lora);
    ds_free(s->lora_at);
    ds_free(s->lora_u);
    ds_free(s->lora_src);
    ds_free(s->lora_scales);
    s->lora = NULL;
    s->lora_at = NULL;
    s->lora_u = NULL;
    s->lora_src = NULL;
    s->lora_scales = NULL;
    s->lora_n = 0;
}

/* ---- merging -------------------------------------------------------------------------------- */
typedef struct ds__lora_merge_ctx {
    ds_lora_adapter *const *a;
    const float *scales;
    int n;
    ds__row_delta *d;   /* (n) */
} ds__lora_merge_ctx;

static int ds__lora_deltas(void *ctx, const char *name, const ds__row_delta **out) {
    ds__lora_merge_ctx *m = DS__CAST(ds__lora_merge_ctx *, ctx);
    int layer, target, i, j, k = 0;
    if (!ds__lora_parse_gguf(name, "", &layer, &target) || target == DS__LORA_N_TARGETS) return 0;
    for (i = 0; i < m->n; i++) {
        float f = m->scales ? m->scales[i] : 1.0f;
        for (j = 0; j < m->a[i]->n && f != 0; j++) {
            const ds__lora_pair *p = &m->a[i]->p[j];
            if (p->layer != layer || p->target != target) continue;
            m->d[k].a = p->a;
            m->d[k].bt = p->bt;
            m->d[k].r = p->r;
            m->d[k].out = p->out;
            m->d[k++].c = f * ds__lora_factor(m->a[i], p);
        }
    }
    *out = m->d;
    return k;
}

DS_API ds_status ds_lora_merge(const char *base_path, ds_lora_adapter *const *a, const float *scales, int n, const char *out_path, const ds_quantize_config *cfg) {
    ds__lora_merge_ctx m;
    ds_gguf *g = NULL;
    ds_str arch;
    char arch_z[32];
    ds_status s;
    int i;
    if (!base_path || !out_path || n < 0 || (n && !a)) return ds__fail(DS_ERR_INVALID_ARG, "lora merge: bad argument");
    for (i = 0; i < n; i++)
        if (!a[i] || (scales && !isfinite(scales[i]))) return ds__fail(DS_ERR_INVALID_ARG, "lora merge: adapter %d is NULL or its scale not finite", i);
    if ((s = ds_gguf_open(base_path, &g)) != DS_OK) return s;
    if (ds_gguf_get_str(g, "general.architecture", &arch) != DS_OK || arch.len >= sizeof arch_z) s = ds__fail(DS_ERR_FORMAT, "lora merge: '%s': general.architecture is missing", base_path);
    if (s == DS_OK) {
        memcpy(arch_z, arch.ptr, arch.len);
        arch_z[arch.len] = 0;
    }
    for (i = 0; s == DS_OK && i < n; i++) s = ds__lora_check_gguf(a[i], g, arch_z);
    ds_gguf_free(g);
    if (s != DS_OK) return s;
    m.a = a;
    m.scales = scales;
    m.n = n;
    if (!(m.d = DS__CAST(ds__row_delta *, ds__calloc((size_t)n + 1, sizeof *m.d)))) return ds__fail(DS_ERR_NO_MEMORY, "lora merge: out of memory");
    s = ds__quantize_file(base_path, out_path, cfg, !(cfg && cfg->type), ds__lora_deltas, &m);
    ds_free(m.d);
    return s;
}

// >>train
/* ---- config files ------------------------------------------------------------------------- */
typedef enum { DS__K_INT, DS__K_FLOAT, DS__K_U64 } ds__key_type;
typedef struct ds__cfg_key {
    const char *name;
    int train;            /* 1: a ds_train_config field */
    ds__key_type type;
    size_t off;
    double lo, hi;
} ds__cfg_key;

#define DS__MK(n, f, t, lo, hi) {n, 0, t, offsetof(ds_model_config, f), lo, hi}
#define DS__TK(n, f, t, lo, hi) {n, 1, t, offsetof(ds_train_config, f), lo, hi}
static const ds__cfg_key ds__cfg_keys[] = {
    DS__MK("n_vocab", n_vocab, DS__K_INT, 2, 1 << 24), DS__MK("n_ctx", n_ctx, DS__K_INT, 1, 1 << 24),
    DS__MK("n_embd", n_embd, DS__K_INT, 1, 1 << 16), DS__MK("n_layer", n_layer, DS__K_INT, 1, DS_MAX_LAYERS),
    DS__MK("n_head", n_head, DS__K_INT, 1, 1024), DS__MK("n_head_kv", n_head_kv, DS__K_INT, 1, 1024),
    DS__MK("head_dim", head_dim, DS__K_INT, 2, 4096), DS__MK("n_ff", n_ff, DS__K_INT, 1, 1 << 20),
    DS__MK("n_rot", n_rot, DS__K_INT, 2, 4096), DS__MK("norm_eps", norm_eps, DS__K_FLOAT, 1e-12, 1),
    DS__MK("rope_base", rope_base, DS__K_FLOAT, 1, 1e9), DS__MK("tied_output", tied_output, DS__K_INT, 0, 1),
    DS__MK("q_lora_rank", q_lora_rank, DS__K_INT, 0, 1 << 16), DS__MK("kv_lora_rank", kv_lora_rank, DS__K_INT, 1, 1 << 16),
    DS__MK("qk_nope_dim", qk_nope_dim, DS__K_INT, 1, 4096), DS__MK("qk_rope_dim", qk_rope_dim, DS__K_INT, 2, 512),
    DS__MK("v_head_dim", v_head_dim, DS__K_INT, 1, 4096), DS__MK("n_expert", n_expert, DS__K_INT, 1, 4096),
    DS__MK("n_expert_used", n_expert_used, DS__K_INT, 1, 4096), DS__MK("n_expert_shared", n_expert_shared, DS__K_INT, 0, 64),
    DS__MK("n_ff_expert", n_ff_expert, DS__K_INT, 1, 1 << 20), DS__MK("n_expert_groups", n_expert_groups, DS__K_INT, 0, 4096),
    DS__MK("n_groups_used", n_groups_used, DS__K_INT, 0, 4096), DS__MK("routed_scale", routed_scale, DS__K_FLOAT, 1e-6, 1e6),
    DS__MK("norm_topk", norm_topk, DS__K_INT, 0, 1),
    DS__MK("sda_block", sda_block, DS__K_INT, 1, 4096), DS__MK("sda_topk", sda_topk, DS__K_INT, 1, 1 << 24),
    DS__MK("sda_window", sda_window, DS__K_INT, -1, 1 << 24), DS__MK("sda_sink", sda_sink, DS__K_INT, -1, 1 << 24),
    DS__MK("sda_sparsity", sda_sparsity, DS__K_FLOAT, 1e-6, 1), DS__MK("sda_index_heads", sda_index_heads, DS__K_INT, 1, 64),
    DS__MK("sda_index_dim", sda_index_dim, DS__K_INT, 1, 4096),
    DS__TK("moe_bias_rate", moe_bias_rate, DS__K_FLOAT, -1, 1), DS__TK("moe_balance_alpha", moe_balance_alpha, DS__K_FLOAT, 0, 100),
    DS__TK("batch", batch, DS__K_INT, 1, 1 << 16), DS__TK("seq_len", seq_len, DS__K_INT, 1, 1 << 20),
    DS__TK("grad_accum", grad_accum, DS__K_INT, 1, 1 << 16), DS__TK("steps", steps, DS__K_INT, 1, 1e9),
    DS__TK("lr", lr, DS__K_FLOAT, 1e-12, 10), DS__TK("min_lr", min_lr, DS__K_FLOAT, -1, 1),
    DS__TK("warmup", warmup, DS__K_INT, 0, 1e9), DS__TK("weight_decay", weight_decay, DS__K_FLOAT, -1, 10),
    DS__TK("beta1", beta1, DS__K_FLOAT, 0, 0.999999), DS__TK("beta2", beta2, DS__K_FLOAT, 0, 0.9999999),
    DS__TK("adam_eps", adam_eps, DS__K_FLOAT, 1e-30, 1), DS__TK("grad_clip", grad_clip, DS__K_FLOAT, -1, 1e9),
    DS__TK("seed", seed, DS__K_U64, 0, 1.8e19), DS__TK("init_std", init_std, DS__K_FLOAT, 1e-9, 10),
    DS__TK("recompute", recompute, DS__K_INT, 0, 1), DS__TK("threads", n_threads, DS__K_INT, 0, 512),
    DS__TK("loss_scale", loss_scale, DS__K_FLOAT, 0, 1e38), DS__TK("loss_scale_window", loss_scale_window, DS__K_INT, 1, 1e9),
    DS__TK("no_loss_scaling", no_loss_scaling, DS__K_INT, 0, 1),
    DS__TK("checkpoint_every", checkpoint_every, DS__K_INT, 1, 1e9), DS__TK("keep_checkpoints", keep_checkpoints, DS__K_INT, 1, 1e6),
    DS__TK("eval_every", eval_every, DS__K_INT, 1, 1e9), DS__TK("eval_batches", eval_batches, DS__K_INT, 1, 1e6),
};
#undef DS__MK
#undef DS__TK

static const char *const ds__attn_names[] = {"dense", "mla", "sda"};
static const char *const ds__ffn_names[] = {"dense", "moe"};
static const char *const ds__prec_names[] = {"f32", "bf16", "fp16", "fp8"};
static const char *const ds__gating_names[] = {"softmax", "sigmoid"};

static int ds__name_index(const char *v, const char *const *names, int n) {
    int i;
    for (i = 0; i < n; i++)
        if (!strcmp(v, names[i])) return i;
    return -1;
}

static ds_status ds__cfg_number(const ds__cfg_key *k, const char *v, void *base, const char *where, int line) {
    char *end;
    double d;
    errno = 0;
    d = strtod(v, &end);
    if (errno || end == v || *end || !(d >= k->lo && d <= k->hi) || (k->type != DS__K_FLOAT && d != floor(d)))
        return ds__fail(DS_ERR_INVALID_ARG, "%s:%d: %s = '%s': need %s in [%g, %g]", where, line, k->name, v, k->type == DS__K_FLOAT ? "a number" : "an integer", k->lo, k->hi);
    if (k->type == DS__K_INT) *(int *)(void *)((char *)base + k->off) = (int)d;
    else if (k->type == DS__K_U64) *(uint64_t *)(void *)((char *)base + k->off) = (uint64_t)strtoull(v, NULL, 10);
    else *(float *)(void *)((char *)base + k->off) = (float)d;
    return DS_OK;
}

/* layers.attn / layers.ffn / layer.N.attn / layer.N.ffn */
static ds_status ds__cfg_layer_key(const char *key, const char *v, ds_model_config *mc, const char *where, int line) {
    int lo = 0, hi = DS_MAX_LAYERS, i, idx;
    const char *field;
    if (!strncmp(key, "layers.", 7)) {
        field = key + 7;
    } else {
        char *end;
        long n = strtol(key + 6, &end, 10);
        if (end == key + 6 || *end != '.' || n < 0 || n >= DS_MAX_LAYERS) return ds__fail(DS_ERR_INVALID_ARG, "%s:%d: '%s': need layer.N.attn or layer.N.ffn with N < %d", where, line, key, DS_MAX_LAYERS);
        if (mc->n_layer > 0 && n >= mc->n_layer) return ds__fail(DS_ERR_INVALID_ARG, "%s:%d: '%s': the model has %d layers", where, line, key, mc->n_layer);
        lo = (int)n;
        hi = lo + 1;
        field = end + 1;
    }
    if (!strcmp(field, "attn")) {
        if ((idx = ds__name_index(v, ds__attn_names, 3)) < 0) return ds__fail(DS_ERR_INVALID_ARG, "%s:%d: %s = '%s': need dense, mla or sda", where, line, key, v);
        for (i = lo; i < hi; i++) mc->layers[i].attn = (ds_attn_kind)idx;
    } else if (!strcmp(field, "ffn")) {
        if ((idx = ds__name_index(v, ds__ffn_names, 2)) < 0) return ds__fail(DS_ERR_INVALID_ARG, "%s:%d: %s = '%s': need dense or moe", where, line, key, v);
        for (i = lo; i < hi; i++) mc->layers[i].ffn = (ds_ffn_kind)idx;
    } else {
        return ds__fail(DS_ERR_INVALID_ARG, "%s:%d: unknown key '%s'", where, line, key);
    }
    return DS_OK;
}

static ds_status ds__cfg_line(char *s, ds_model_config *mc, ds_train_config *tc, const char *where, int line) {
    char *eq = strchr(s, '='), *key = s, *v, *e;
    size_t i;
    if (!eq) return ds__fail(DS_ERR_INVALID_ARG, "%s:%d: expected 'key = value'", where, line);
    *eq = 0;
    v = eq + 1;
    while (*key == ' ' || *key == '\t') key++;
    for (e = eq; e > key && (e[-1] == ' ' || e[-1] == '\t');) *--e = 0;
    while (*v == ' ' || *v == '\t') v++;
    for (e = v + strlen(v); e > v && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r');) *--e = 0;
    if (!*key || !*v) return ds__fail(DS_ERR_INVALID_ARG, "%s:%d: empty key or value", where, line);
    if (!strncmp(key, "layers.", 7) || !strncmp(key, "layer.", 6)) return ds__cfg_layer_key(key, v, mc, where, line);
    if (!strcmp(key, "arch")) {
        if (strlen(v) >= sizeof mc->arch) return ds__fail(DS_ERR_INVALID_ARG, "%s:%d: arch '%s' is too long", where, line, v);
        strcpy(mc->arch, v);
        return DS_OK;
    }
    if (!strcmp(key, "gating")) {
        int g = ds__name_index(v, ds__gating_names, 2);
        if (g < 0) return ds__fail(DS_ERR_INVALID_ARG, "%s:%d: gating = '%s': need softmax or sigmoid", where, line, v);
        mc->gating = (ds_gating)g;
        return DS_OK;
    }
    if (!strcmp(key, "precision")) {
        int p = ds__name_index(v, ds__prec_names, 4);
        if (!tc) return ds__fail(DS_ERR_INVALID_ARG, "%s:%d: '%s' is a training key", where, line, key);
        if (p < 0) return ds__fail(DS_ERR_INVALID_ARG, "%s:%d: precision = '%s': need f32, bf16, fp16 or fp8", where, line, v);
        tc->precision = (ds_precision)p;
        return DS_OK;
    }
    for (i = 0; i < sizeof ds__cfg_keys / sizeof ds__cfg_keys[0]; i++) {
        const ds__cfg_key *k = &ds__cfg_keys[i];
        if (strcmp(key, k->name)) continue;
        if (k->train && !tc) return ds__fail(DS_ERR_INVALID_ARG, "%s:%d: '%s' is a training key", where, line, key);
        return ds__cfg_number(k, v, k->train ? (void *)tc : (void *)mc, where, line);
    }
    return ds__fail(DS_ERR_INVALID_ARG, "%s:%d: unknown key '%s'", where, line, key);
}

DS_API ds_status ds_model_config_parse(const char *text, ds_model_config *mc, ds_train_config *tc, const char *where) {
    char buf[512];
    int line = 0;
    ds_status st;
    if (!text || !mc) return ds__fail(DS_ERR_INVALID_ARG, "config: NULL argument");
    if (!where) where = "config";
    while (*text) {
        const char *nl = strchr(text, '\n'), *hash;
        size_t n = nl ? (size_t)(nl - text) : strlen(text), k;
        line++;
        if (n >= sizeof buf) return ds__fail(DS_ERR_INVALID_ARG, "%s:%d: line too long", where, line);
        memcpy(buf, text, n);
        buf[n] = 0;
        text += n + (nl ? 1 : 0);
        if ((hash = strchr(buf, '#')) != NULL) buf[hash - buf] = 0;
        for (k = 0; buf[k] == ' ' || buf[k] == '\t' || buf[k] == '\r'; k++) {}
        if (!buf[k]) continue;
        if ((st = ds__cfg_line(buf, mc, tc, where, line)) != DS_OK) return st;
    }
    if (mc->n_head_kv && mc->n_head && mc->n_head % mc->n_head_kv) return ds__fail(DS_ERR_INVALID_ARG, "%s: n_head = %d is not a multiple of n_head_kv = %d", where, mc->n_head, mc->n_head_kv);
    if (mc->n_embd && mc->n_head && !mc->head_dim && mc->n_embd % mc->n_head) return ds__fail(DS_ERR_INVALID_ARG, "%s: n_embd = %d is not a multiple of n_head = %d (set head_dim)", where, mc->n_embd, mc->n_head);
    if ((mc->sda_index_heads > 0) != (mc->sda_index_dim > 0)) return ds__fail(DS_ERR_INVALID_ARG, "%s: sda_index_heads and sda_index_dim go together (a learned SDA gate)", where);
    return DS_OK;
}

#if !defined(DS_NO_TRAIN)
/* ---- forward / backward pairs -------------------------------------------------------------
   N = B * T rows; every buffer is contiguous row-major. A backward ADDS into parameter
   gradients, and into input gradients where the name says so (residual streams). Row loops
   run on the pool in fixed chunks; parameter-gradient reductions run over columns, so results
   never depend on the number of threads. */
#define DS__ROWS_PER_TASK 16

/* dwte (V, C) += dout rows scattered by token */
static void ds__embedding_backward(float *dwte, const float *dout, const int32_t *tok, int N, int C) {
    int i, c;
    for (i = 0; i < N; i++) {
        float *d = dwte + (size_t)tok[i] * C;
        const float *g = dout + (size_t)i * C;
        for (c = 0; c < C; c++) d[c] += g[c];
    }
}

typedef struct ds__norm_args {
    float *out, *dx, *dw, *rstd;
    const float *x, *w, *dout, *rs;
    int N, C;
    float eps;
} ds__norm_args;

/* out = x * rstd * w, rstd = 1 / sqrt(mean(x^2) + eps) */
static void ds__rmsnorm_rows(void *ctx, int t, int n) {
    const ds__norm_args *a = (const ds__norm_args *)ctx;
    int i, c, i1 = DS__MIN(a->N, (t + 1) * DS__ROWS_PER_TASK);
    (void)n;
    for (i = t * DS__ROWS_PER_TASK; i < i1; i++) {
        const float *x = a->x + (size_t)i * a->C;
        float *o = a->out + (size_t)i * a->C, r;
        double ss = 0.0;
        for (c = 0; c < a->C; c++) ss += (double)x[c] * x[c];
        r = (float)(1.0 / sqrt(ss / a->C + a->eps));
        a->rstd[i] = r;
        for (c = 0; c < a->C; c++) o[c] = x[c] * r * a->w[c];
    }
}
static void ds__rmsnorm_forward(ds_pool *pool, float *out, float *rstd, const float *x, const float *w, int N, int C, float eps) {
    ds__norm_args a;
    memset(&a, 0, sizeof a);
    a.out = out; a.rstd = rstd; a.x = x; a.w = w; a.N = N; a.C = C; a.eps = eps;
    ds_pool_run(pool, ds__rmsnorm_rows, &a, (N + DS__ROWS_PER_TASK - 1) / DS__ROWS_PER_TASK);
}
/* dx += rstd * (g - x * rstd^2 * mean(g * x)), g = dout * w */
static void ds__rmsnorm_dx_rows(void *ctx, int t, int n) {
    const ds__norm_args *a = (const ds__norm_args *)ctx;
    int i, c, i1 = DS__MIN(a->N, (t + 1) * DS__ROWS_PER_TASK);
    (void)n;
    for (i = t * DS__ROWS_PER_TASK; i < i1; i++) {
        const float *x = a->x + (size_t)i * a->C, *d = a->dout + (size_t)i * a->C;
        float *dx = a->dx + (size_t)i * a->C, r = a->rs[i], k;
        double dot = 0.0;
        for (c = 0; c < a->C; c++) dot += (double)d[c] * a->w[c] * x[c];
        k = (float)(dot / a->C) * r * r;
        for (c = 0; c < a->C; c++) dx[c] += r * (d[c] * a->w[c] - x[c] * k);
    }
}
/* dw[c] += sum_i dout[i][c] * x[i][c] * rstd[i], a column block per task */
static void ds__rmsnorm_dw_cols(void *ctx, int t, int n) {
    const ds__norm_args *a = (const ds__norm_args *)ctx;
    int i, c, c0 = (int)((int64_t)a->C * t / n), c1 = (int)((int64_t)a->C * (t + 1) / n);
    for (i = 0; i < a->N; i++) {
        const float *x = a->x + (size_t)i * a->C, *d = a->dout + (size_t)i * a->C;
        float r = a->rs[i];
        for (c = c0; c < c1; c++) a->dw[c] += d[c] * x[c] * r;
    }
}
static void ds__rmsnorm_backward(ds_pool *pool, float *dx, float *dw, const float *dout, const float *x, const float *w,
                                 const float *rstd, int N, int C) {
    ds__norm_args a;
    memset(&a, 0, sizeof a);
    a.dx = dx; a.dw = dw; a.dout = dout; a.x = x; a.w = w; a.rs = rstd; a.N = N; a.C = C;
    ds_pool_run(pool, ds__rmsnorm_dx_rows, &a, (N + DS__ROWS_PER_TASK - 1) / DS__ROWS_PER_TASK);
    if (dw) ds_pool_run(pool, ds__rmsnorm_dw_cols, &a, DS__MAX(1, DS__MIN(16, C / 16)));   /* NULL: a frozen norm */
}

/* RoPE on adjacent pairs (x[2i], x[2i+1]) of the first n_rot dims of each head, by angle
   pos * base^(-2i / n_rot), pos = row % T. cs holds (T, n_rot / 2) cos/sin pairs. sign = -1
   rotates back, which is the backward of the rotation. x: (N, nh, hd) */
static void ds__rope_apply(float *x, const float *cs, int N, int T, int nh, int hd, int n_rot, float sign) {
    int i, h, p;
    for (i = 0; i < N; i++) {
        const float *row = cs + (size_t)(i % T) * n_rot;
        for (h = 0; h < nh; h++) {
            float *v = x + ((size_t)i * nh + h) * hd;
            for (p = 0; p < n_rot / 2; p++) {
                float c = row[2 * p], s = sign * row[2 * p + 1], a = v[2 * p], b = v[2 * p + 1];
                v[2 * p] = a * c - b * s;
                v[2 * p + 1] = a * s + b * c;
            }
        }
    }
}
static void ds__rope_table(float *cs, int T, int n_rot, float base) {
    int t, p;
    for (t = 0; t < T; t++)
        for (p = 0; p < n_rot / 2; p++) {
            double ang = t * pow((double)base, -2.0 * p / n_rot);
            cs[(size_t)t * n_rot + 2 * p] = (float)cos(ang);
            cs[(size_t)t * n_rot + 2 * p + 1] = (float)sin(ang);
        }
}

typedef struct ds__attn_args {
    float *y, *probs, *dq, *dk, *dv;
    const float *q, *k, *v, *dy, *yc, *pc;
    int B, T, H, Hkv, hd;
    const ds__ops *o;
} ds__attn_args;

/* one task per (batch, kv head): the query heads of its group, causal softmax(q k^T / sqrt(hd)) v.
   q, y: (N, H, hd); k, v: (N, Hkv, hd); probs: (B, H, T, T) (lower triangle) */
static void ds__attention_rows(void *ctx, int task, int n) {
    const ds__attn_args *a = (const ds__attn_args *)ctx;
    int b = task / a->Hkv, g = task % a->Hkv, G = a->H / a->Hkv, h, t, j;
    int qs = a->H * a->hd, ks = a->Hkv * a->hd;
    float scale = 1.0f / sqrtf((float)a->hd);
    (void)n;
    for (h = g * G; h < (g + 1) * G; h++)
        for (t = 0; t < a->T; t++) {
            const float *q = a->q + ((size_t)b * a->T + t) * qs + h * a->hd;
            float *p = a->probs + (((size_t)b * a->H + h) * a->T + t) * a->T;
            float *y = a->y + ((size_t)b * a->T + t) * qs + h * a->hd, mx = -FLT_MAX, sum = 0.0f;
            for (j = 0; j <= t; j++) {
                p[j] = scale * a->o->dot(q, a->k + ((size_t)b * a->T + j) * ks + g * a->hd, a->hd);
                mx = DS__MAX(mx, p[j]);
            }
            for (j = 0; j <= t; j++) sum += (p[j] = expf(p[j] - mx));
            memset(y, 0, sizeof(float) * (size_t)a->hd);
            for (j = 0; j <= t; j++) {
                p[j] /= sum;
                a->o->axpy(y, p[j], a->v + ((size_t)b * a->T + j) * ks + g * a->hd, a->hd);
            }
        }
}
static void ds__attention_forward(const ds__ops *o, ds_pool *pool, float *y, float *probs, const float *q, const float *k, const float *v,
                                  int B, int T, int H, int Hkv, int hd) {
    ds__attn_args a;
    memset(&a, 0, sizeof a);
    a.y = y; a.probs = probs; a.q = q; a.k = k; a.v = v; a.B = B; a.T = T; a.H = H; a.Hkv = Hkv; a.hd = hd;
    a.o = o;
    ds_pool_run(pool, ds__attention_rows, &a, B * Hkv);
}
/* dp_j = dy . v_j; ds_j = p_j (dp_j - dy . y) (since sum_j p_j v_j = y); dq += scale sum ds_j k_j,
   dk_j += scale ds_j q, dv_j += p_j dy. dq, dk, dv are overwritten (zeroed per task first). */
static void ds__attention_back_rows(void *ctx, int task, int n) {
    const ds__attn_args *a = (const ds__attn_args *)ctx;
    int b = task / a->Hkv, g = task % a->Hkv, G = a->H / a->Hkv, h, t, j;
    int qs = a->H * a->hd, ks = a->Hkv * a->hd;
    float scale = 1.0f / sqrtf((float)a->hd);
    (void)n;
    for (t = 0; t < a->T; t++) {
        size_t r = (size_t)b * a->T + t;
        memset(a->dk + r * ks + g * a->hd, 0, sizeof(float) * (size_t)a->hd);
        memset(a->dv + r * ks + g * a->hd, 0, sizeof(float) * (size_t)a->hd);
    }
    for (h = g * G; h < (g + 1) * G; h++)
        for (t = 0; t < a->T; t++) {
            size_t r = (size_t)b * a->T + t;
            const float *q = a->q + r * qs + h * a->hd, *dy = a->dy + r * qs + h * a->hd;
            const float *p = a->pc + (((size_t)b * a->H + h) * a->T + t) * a->T;
            float *dq = a->dq + r * qs + h * a->hd, dyy = a->o->dot(dy, a->yc + r * qs + h * a->hd, a->hd);
            memset(dq, 0, sizeof(float) * (size_t)a->hd);
            for (j = 0; j <= t; j++) {
                size_t rj = ((size_t)b * a->T + j) * ks + g * a->hd;
                float ds = p[j] * (a->o->dot(dy, a->v + rj, a->hd) - dyy) * scale;
                a->o->axpy(dq, ds, a->k + rj, a->hd);
                a->o->axpy(a->dk + rj, ds, q, a->hd);
                a->o->axpy(a->dv + rj, p[j], dy, a->hd);
            }
        }
}
static void ds__attention_backward(const ds__ops *o, ds_pool *pool, float *dq, float *dk, float *dv, const float *dy, const float *y,
                                   const float *probs, const float *q, const float *k, const float *v, int B, int T, int H,
                                   int Hkv, int hd) {
    ds__attn_args a;
    memset(&a, 0, sizeof a);
    a.dq = dq; a.dk = dk; a.dv = dv; a.dy = dy; a.yc = y; a.pc = probs;
    a.q = q; a.k = k; a.v = v; a.B = B; a.T = T; a.H = H; a.Hkv = Hkv; a.hd = hd;
    a.o = o;
    ds_pool_run(pool, ds__attention_back_rows, &a, B * Hkv);
}

typedef struct ds__swiglu_args {
    float *h, *dg, *du;
    const float *g, *u, *dh;
    size_t n;
} ds__swiglu_args;
#define DS__ELEMS_PER_TASK 8192
/* h = silu(g) * u */
static void ds__swiglu_chunk(void *ctx, int t, int n) {
    const ds__swiglu_args *a = (const ds__swiglu_args *)ctx;
    size_t i, i1 = DS__MIN(a->n, (size_t)(t + 1) * DS__ELEMS_PER_TASK);
    (void)n;
    for (i = (size_t)t * DS__ELEMS_PER_TASK; i < i1; i++) a->h[i] = a->g[i] / (1.0f + expf(-a->g[i])) * a->u[i];
}
/* dg = dh * u * s (1 + g (1 - s)), du = dh * silu(g), s = sigmoid(g); overwrites dg, du */
static void ds__swiglu_back_chunk(void *ctx, int t, int n) {
    const ds__swiglu_args *a = (const ds__swiglu_args *)ctx;
    size_t i, i1 = DS__MIN(a->n, (size_t)(t + 1) * DS__ELEMS_PER_TASK);
    (void)n;
    for (i = (size_t)t * DS__ELEMS_PER_TASK; i < i1; i++) {
        float g = a->g[i], s = 1.0f / (1.0f + expf(-g));
        a->dg[i] = a->dh[i] * a->u[i] * s * (1.0f + g * (1.0f - s));
        a->du[i] = a->dh[i] * g * s;
    }
}
static void ds__swiglu_forward(ds_pool *pool, float *h, const float *g, const float *u, size_t n) {
    ds__swiglu_args a;
    memset(&a, 0, sizeof a);
    a.h = h; a.g = g; a.u = u; a.n = n;
    ds_pool_run(pool, ds__swiglu_chunk, &a, (int)((n + DS__ELEMS_PER_TASK - 1) / DS__ELEMS_PER_TASK));
}
static void ds__swiglu_backward(ds_pool *pool, float *dg, float *du, const float *dh, const float *g, const float *u, size_t n) {
    ds__swiglu_args a;
    memset(&a, 0, sizeof a);
    a.dg = dg; a.du = du; a.dh = dh; a.g = g; a.u = u; a.n = n;
    ds_pool_run(pool, ds__swiglu_back_chunk, &a, (int)((n + DS__ELEMS_PER_TASK - 1) / DS__ELEMS_PER_TASK));
}

typedef struct ds__ce_args {
    const ds__ops *ops;
    float *logits, *losses;
    const int32_t *targets;
    int N, V;
    float dscale;
} ds__ce_args;
/* logits (N, V) become probabilities; losses[i] = -log p[target] */
static void ds__ce_rows(void *ctx, int t, int n) {
    const ds__ce_args *a = (const ds__ce_args *)ctx;
    int i, i1 = DS__MIN(a->N, (t + 1) * DS__ROWS_PER_TASK);
    (void)n;
    for (i = t * DS__ROWS_PER_TASK; i < i1; i++) a->losses[i] = a->ops->xent(a->logits + (size_t)i * a->V, a->targets[i], a->V);
}
static void ds__crossentropy_forward(const ds__ops *o, ds_pool *pool, float *logits, float *losses, const int32_t *targets, int N, int V) {
    ds__ce_args a;
    memset(&a, 0, sizeof a);
    a.ops = o;
    a.logits = logits; a.losses = losses; a.targets = targets; a.N = N; a.V = V;
    ds_pool_run(pool, ds__ce_rows, &a, (N + DS__ROWS_PER_TASK - 1) / DS__ROWS_PER_TASK);
}
/* probs (N, V) become dlogits = (p - onehot(target)) * dscale, in place */
static void ds__ce_back_rows(void *ctx, int t, int n) {
    const ds__ce_args *a = (const ds__ce_args *)ctx;
    int i, i1 = DS__MIN(a->N, (t + 1) * DS__ROWS_PER_TASK);
    (void)n;
    for (i = t * DS__ROWS_PER_TASK; i < i1; i++) a->ops->xent_back(a->logits + (size_t)i * a->V, a->targets[i], a->V, a->dscale);
}
static void ds__crossentropy_backward(const ds__ops *o, ds_pool *pool, float *probs, const int32_t *targets, int N, int V, float dscale) {
    ds__ce_args a;
    memset(&a, 0, sizeof a);
    a.ops = o;
    a.logits = probs; a.targets = targets; a.N = N; a.V = V; a.dscale = dscale;
    ds_pool_run(pool, ds__ce_back_rows, &a, (N + DS__ROWS_PER_TASK - 1) / DS__ROWS_PER_TASK);
}

/* ---- the trainer -------------------------------------------------------------------------- */
/* offsets of one dense layer's tensors in the parameter buffer */
typedef struct ds__tlayer {
    size_t attn_norm, wq, wk, wv, wo, ffn_norm, wg, wu, wd;
    ds__mla_tparams mla;   /* MLA layers (>>train:deepseek) */
    ds__moe_tparams moe;   /* MoE layers */
} ds__tlayer;

/* one tensor of the parameter buffer: (rows, cols) = GGUF ne (cols, rows) */
typedef struct ds__ttensor {
    char name[48];
    size_t off;
    int rows, cols;
    ds__where where;   /* of the parameter buffer (the trainer's buffers are host memory) */
} ds__ttensor;

/* what one dense layer's backward needs from its forward */
typedef struct ds__tacts {
    float *ln1, *rstd1, *q, *k, *v, *probs, *att, *xmid, *ln2, *rstd2, *g, *u, *h;
    ds__mla_tacts mla;     /* MLA layers (>>train:deepseek) */
    ds__moe_tacts moe;     /* MoE layers */
} ds__tacts;

#define DS__SCALE_HIST 16

/* the projections LoRA can target, in DS_LORA_* bit order */
enum { DS__LW_Q, DS__LW_K, DS__LW_V, DS__LW_O, DS__LW_GATE, DS__LW_UP, DS__LW_DOWN, DS__LW_COUNT };

struct ds_trainer {
    ds_model_config mc;
    ds_train_config tc;
    ds_pool *pool;
    ds__ops ops;         /* the backend's kernels, chosen at creation */
    ds__gemm_ws ws;
    int C, H, Hkv, hd, qd, kvd, F, V, L, B, T, n_rot;
    size_t n_params;
    float *params, *grads, *m, *v;
    ds__ttensor *tensors;
    int n_tensors;
    size_t off_embd, off_norm, off_out;
    ds__tlayer *lp;
    /* activations: the residual stream at every layer input, then per-layer saved values
       (one set shared by all layers with recompute) */
    float *arena;
    size_t arena_floats;
    float **x;           /* L + 1 of (N, C) */
    ds__tacts *la;       /* L, or 1 with recompute */
    float *lnf, *rstdf, *logits, *losses, *cs;
    float *dres, *dln, *dq, *dk, *dv, *datt, *dg, *du, *dh;
    float *qa, *qb;      /* rounded operand copies for emulated fp16 / fp8 */
    size_t q_floats;
    int32_t *tok, *tgt;  /* grad_accum * B * T each */
    /* state that checkpoints carry */
    int step, adam_t, skipped_total, clean_steps;
    uint64_t rng, cursor;
    float scale;
    float amax_hist[DS__SCALE_HIST];
    float amax;          /* largest |value| rounded in this step's backward (scaled) */
    int scaling;
    ds__dsk_train dsk;   /* MLA / MoE layers (>>train:deepseek) */
    const ds_gguf *vocab;   /* the tokenizer checkpoints and the model carry (not owned) */
    /* LoRA over a frozen base (>>lora): the parameter buffer then holds only the A / B pairs */
    const ds_model *base;   /* not owned; NULL: every weight is trainable */
    ds_lora_config lc;
    size_t *lora;           /* L * DS__LW_COUNT pairs of offsets (A, B); (0, 0): not targeted */
    float *lora_x, *lora_h, *lora_dh;   /* scratch: the dropped-out input (N, widest in), (N, r) twice */
    float *wblk;            /* one dequantized row block of a frozen weight */
    size_t wblk_floats;
    int lora_train;         /* 1 inside ds_trainer_grad: dropout applies */
    int lora_mb;            /* micro-batch of the current step: the dropout masks' stream */
    uint64_t base_id, base_size;   /* the base's identity, kept in checkpoints */
};

/* splitmix64: the trainer's one random source (init, data order) */
static uint64_t ds__tr_next(uint64_t *s) {
    uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}
static double ds__tr_uniform(uint64_t *s) { return ((double)(ds__tr_next(s) >> 11) + 0.5) * (1.0 / 9007199254740992.0); }
static float ds__tr_normal(uint64_t *s) {
    double u1 = ds__tr_uniform(s), u2 = ds__tr_uniform(s);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

DS_API ds_status ds_model_config_check(ds_model_config *mc) {
    int i;
    if (!mc) return ds__fail(DS_ERR_INVALID_ARG, "model config: NULL");
    if (!mc->arch[0]) strcpy(mc->arch, "llama");
    if (mc->n_layer <= 0 || mc->n_layer > DS_MAX_LAYERS) return ds__fail(DS_ERR_INVALID_ARG, "model config: n_layer = %d, need 1..%d", mc->n_layer, DS_MAX_LAYERS);
    if (mc->n_embd <= 0 || mc->n_vocab <= 1 || mc->n_head <= 0) return ds__fail(DS_ERR_INVALID_ARG, "model config: n_embd, n_vocab and n_head must be set");
    if (!mc->n_head_kv) mc->n_head_kv = mc->n_head;
    if (mc->n_head_kv < 0 || mc->n_head % mc->n_head_kv) return ds__fail(DS_ERR_INVALID_ARG, "model config: n_head = %d is not a multiple of n_head_kv = %d", mc->n_head, mc->n_head_kv);
    if (!mc->head_dim) {
        if (mc->n_embd % mc->n_head) return ds__fail(DS_ERR_INVALID_ARG, "model config: n_embd = %d is not a multiple of n_head = %d", mc->n_embd, mc->n_head);
        mc->head_dim = mc->n_embd / mc->n_head;
    }
    if (!mc->n_rot) mc->n_rot = mc->head_dim;
    if (mc->head_dim <= 0 || mc->n_rot <= 0 || mc->n_rot > mc->head_dim || (mc->n_rot & 1)) return ds__fail(DS_ERR_INVALID_ARG, "model config: head_dim = %d / n_rot = %d: need an even n_rot <= head_dim", mc->head_dim, mc->n_rot);
    if (!mc->n_ff) mc->n_ff = 4 * mc->n_embd;
    if (!mc->n_ctx) mc->n_ctx = 256;
    if (mc->norm_eps == 0.0f) mc->norm_eps = 1e-5f;
    if (mc->rope_base == 0.0f) mc->rope_base = 10000.0f;
    if (mc->n_ff < 0 || mc->n_ctx < 0 || !(mc->norm_eps > 0.0f) || !(mc->rope_base > 0.0f)) return ds__fail(DS_ERR_INVALID_ARG, "model config: n_ff, n_ctx, norm_eps and rope_base must be positive");
    for (i = 0; i < mc->n_layer; i++) {
        if (mc->layers[i].attn == DS_ATTN_SDA) return ds__fail(DS_ERR_UNSUPPORTED, "train: layer %d: SDA layers cannot be trained yet", i);
#if defined(DS_NO_DEEPSEEK2)
        if (mc->layers[i].attn == DS_ATTN_MLA || mc->layers[i].ffn == DS_FFN_MOE)
            return ds__fail(DS_ERR_UNSUPPORTED, "train: layer %d: MLA and MoE layers were left out of this build (DS_NO_DEEPSEEK2)", i);
#endif
    }
    if (ds_model_config_check_deepseek(mc) != DS_OK) return DS_ERR_INVALID_ARG;
    if (mc->rope_neox || mc->qkv_bias) return ds__fail(DS_ERR_UNSUPPORTED, "train: rope_neox and qkv_bias are not trainable yet");
    return DS_OK;
}

static void ds__train_defaults(ds_train_config *tc) {
    if (tc->batch <= 0) tc->batch = 4;
    if (tc->seq_len <= 0) tc->seq_len = 64;
    if (tc->grad_accum <= 0) tc->grad_accum = 1;
    if (tc->steps <= 0) tc->steps = 1000;
    if (tc->lr == 0.0f) tc->lr = 3e-4f;
    if (tc->min_lr == 0.0f) tc->min_lr = 0.1f;
    if (tc->weight_decay == 0.0f) tc->weight_decay = 0.1f;
    if (tc->beta1 == 0.0f) tc->beta1 = 0.9f;
    if (tc->beta2 == 0.0f) tc->beta2 = 0.95f;
    if (tc->adam_eps == 0.0f) tc->adam_eps = 1e-8f;
    if (tc->grad_clip == 0.0f) tc->grad_clip = 1.0f;
    if (tc->seed == 0) tc->seed = 1234;
    if (tc->init_std == 0.0f) tc->init_std = 0.02f;
    if (tc->loss_scale_window <= 0) tc->loss_scale_window = 2000;
    if (tc->checkpoint_every <= 0) tc->checkpoint_every = 100;
    if (tc->keep_checkpoints <= 0) tc->keep_checkpoints = 3;
    if (tc->eval_every <= 0) tc->eval_every = 50;
    if (tc->eval_batches <= 0) tc->eval_batches = 8;
}

static void ds__tr_add_tensor(ds_trainer *tr, const char *name, int rows, int cols, size_t *off) {
    ds__ttensor *t = &tr->tensors[tr->n_tensors++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->off = tr->n_params;
    t->rows = rows;
    t->cols = cols;
    *off = tr->n_params;
    tr->n_params += (size_t)rows * cols;
}

/* the parameter buffer in GGUF order: token_embd, blk.N.*, output_norm, [output] */
static void ds__tr_layout(ds_trainer *tr) {
    int l;
    char nm[40];
    ds__tr_add_tensor(tr, "token_embd.weight", tr->V, tr->C, &tr->off_embd);
    for (l = 0; l < tr->L; l++) {
        ds__tlayer *p = &tr->lp[l];
#define DS__T(field, suffix, r, c) snprintf(nm, sizeof nm, "blk.%d." suffix ".weight", l); ds__tr_add_tensor(tr, nm, r, c, &p->field);
        DS__T(attn_norm, "attn_norm", 1, tr->C)
        switch (tr->mc.layers[l].attn) {
#if !defined(DS_NO_DEEPSEEK2)
        case DS_ATTN_MLA:
            ds__dsk_tr_layout(tr, l, 0);
            break;
#endif
        default:
            DS__T(wq, "attn_q", tr->qd, tr->C)
            DS__T(wk, "attn_k", tr->kvd, tr->C)
            DS__T(wv, "attn_v", tr->kvd, tr->C)
            DS__T(wo, "attn_output", tr->C, tr->qd)
            break;
        }
        DS__T(ffn_norm, "ffn_norm", 1, tr->C)
        switch (tr->mc.layers[l].ffn) {
#if !defined(DS_NO_DEEPSEEK2)
        case DS_FFN_MOE:
            ds__dsk_tr_layout(tr, l, 1);
            break;
#endif
        default:
            DS__T(wg, "ffn_gate", tr->F, tr->C)
            DS__T(wu, "ffn_up", tr->F, tr->C)
            DS__T(wd, "ffn_down", tr->C, tr->F)
            break;
        }
#undef DS__T
    }
    ds__tr_add_tensor(tr, "output_norm.weight", 1, tr->C, &tr->off_norm);
    if (!tr->mc.tied_output) ds__tr_add_tensor(tr, "output.weight", tr->V, tr->C, &tr->off_out);
    else tr->off_out = tr->off_embd;
}

/* norms start at 1, matrices at N(0, init_std) */
static void ds__tr_init_weights(ds_trainer *tr) {
    uint64_t s = tr->tc.seed ^ UINT64_C(0x5eed);
    int i;
    size_t j;
    for (i = 0; i < tr->n_tensors; i++) {
        const ds__ttensor *t = &tr->tensors[i];
        float *w = tr->params + t->off;
        for (j = 0; j < (size_t)t->rows * t->cols; j++) w[j] = t->rows == 1 ? 1.0f : tr->tc.init_std * ds__tr_normal(&s);
    }
}

static float *ds__tr_take(float **p, size_t n) {
    float *r = *p;
    *p += (n + 15) & ~(size_t)15;
    return r;
}
static size_t ds__tr_round16(size_t n) { return (n + 15) & ~(size_t)15; }

static size_t ds__tr_layer_floats(const ds_trainer *tr) {
    size_t N = (size_t)tr->B * tr->T;
    return 3 * ds__tr_round16(N * tr->C) + 2 * ds__tr_round16(N) + 2 * ds__tr_round16(N * tr->qd) +
           2 * ds__tr_round16(N * tr->kvd) + ds__tr_round16((size_t)tr->B * tr->H * tr->T * tr->T) + 3 * ds__tr_round16(N * tr->F)
#if !defined(DS_NO_DEEPSEEK2)
           + ds__dsk_tr_layer_floats(tr)
#endif
        ;
}

static void ds__tr_carve_layer(ds__tacts *a, float **p, const ds_trainer *tr) {
    size_t N = (size_t)tr->B * tr->T;
    a->ln1 = ds__tr_take(p, N * tr->C);
    a->rstd1 = ds__tr_take(p, N);
    a->q = ds__tr_take(p, N * tr->qd);
    a->k = ds__tr_take(p, N * tr->kvd);
    a->v = ds__tr_take(p, N * tr->kvd);
    a->probs = ds__tr_take(p, (size_t)tr->B * tr->H * tr->T * tr->T);
    a->att = ds__tr_take(p, N * tr->qd);
    a->xmid = ds__tr_take(p, N * tr->C);
    a->ln2 = ds__tr_take(p, N * tr->C);
    a->rstd2 = ds__tr_take(p, N);
    a->g = ds__tr_take(p, N * tr->F);
    a->u = ds__tr_take(p, N * tr->F);
    a->h = ds__tr_take(p, N * tr->F);
#if !defined(DS_NO_DEEPSEEK2)
    ds__dsk_tr_carve(a, p, tr);
#endif
}

static ds_status ds__tr_alloc_acts(ds_trainer *tr) {
    size_t N = (size_t)tr->B * tr->T, nl = tr->tc.recompute ? 1 : (size_t)tr->L, total, grads_f;
    int l;
    float *p;
    total = (size_t)(tr->L + 1) * ds__tr_round16(N * tr->C) + nl * ds__tr_layer_floats(tr) +
            ds__tr_round16(N * tr->C) + ds__tr_round16(N) + ds__tr_round16(N * tr->V) + ds__tr_round16(N);
    grads_f = 2 * ds__tr_round16(N * tr->C) + 2 * ds__tr_round16(N * tr->qd) + 2 * ds__tr_round16(N * tr->kvd) +
              3 * ds__tr_round16(N * tr->F) + ds__tr_round16((size_t)tr->T * tr->n_rot);
    tr->arena_floats = total;
    tr->arena = DS__CAST(float *, ds__calloc(total + grads_f, sizeof(float)));
    tr->x = DS__CAST(float **, ds__calloc((size_t)tr->L + 1, sizeof(float *)));
    tr->la = DS__CAST(ds__tacts *, ds__calloc(nl, sizeof(ds__tacts)));
    if (!tr->arena || !tr->x || !tr->la) return ds__fail(DS_ERR_NO_MEMORY, "train: out of memory for %zu activation floats", total + grads_f);
    p = tr->arena;
    for (l = 0; l <= tr->L; l++) tr->x[l] = ds__tr_take(&p, N * tr->C);
    for (l = 0; l < (int)nl; l++) ds__tr_carve_layer(&tr->la[l], &p, tr);
    tr->lnf = ds__tr_take(&p, N * tr->C);
    tr->rstdf = ds__tr_take(&p, N);
    tr->logits = ds__tr_take(&p, N * tr->V);
    tr->losses = ds__tr_take(&p, N);
    tr->dres = ds__tr_take(&p, N * tr->C);
    tr->dln = ds__tr_take(&p, N * tr->C);
    tr->dq = ds__tr_take(&p, N * tr->qd);
    tr->datt = ds__tr_take(&p, N * tr->qd);
    tr->dk = ds__tr_take(&p, N * tr->kvd);
    tr->dv = ds__tr_take(&p, N * tr->kvd);
    tr->dg = ds__tr_take(&p, N * tr->F);
    tr->du = ds__tr_take(&p, N * tr->F);
    tr->dh = ds__tr_take(&p, N * tr->F);
    tr->cs = ds__tr_take(&p, (size_t)tr->T * tr->n_rot);
    ds__rope_table(tr->cs, tr->T, tr->n_rot, tr->mc.rope_base);
    return DS_OK;
}

static ds_status ds__lora_layout(ds_trainer *tr);
static void ds__lora_init(ds_trainer *tr);
static ds_status ds__lora_alloc(ds_trainer *tr);

/* a trainer of the whole model (base NULL), or of LoRA pairs over base with lc's settings
   (defaults filled) */
static ds_status ds__tr_create(const ds_model_config *mc, const ds_train_config *tc, const ds_model *base, const ds_lora_config *lc, ds_trainer **out) {
    ds_trainer *tr;
    ds_pool_config pc;
    ds_status st;
    size_t N, biggest;
    *out = NULL;
    tr = DS__CAST(ds_trainer *, ds__calloc(1, sizeof *tr));
    if (!tr) return ds__fail(DS_ERR_NO_MEMORY, "train: out of memory");
    tr->mc = *mc;
    if (tc) tr->tc = *tc;
    ds__train_defaults(&tr->tc);
    tr->base = base;
    if (lc) tr->lc = *lc;
    if ((st = ds_model_config_check(&tr->mc)) != DS_OK) goto fail;
    if ((unsigned)tr->tc.precision > DS_PREC_FP8) {
        st = ds__fail(DS_ERR_INVALID_ARG, "train: unknown precision %d", (int)tr->tc.precision);
        goto fail;
    }
    if (tr->tc.backend != DS_BACKEND_CPU && tr->tc.backend != DS_BACKEND_REF) {
        st = ds__fail(DS_ERR_INVALID_ARG, "train: unknown backend %d", (int)tr->tc.backend);
        goto fail;
    }
    tr->C = tr->mc.n_embd; tr->H = tr->mc.n_head; tr->Hkv = tr->mc.n_head_kv; tr->hd = tr->mc.head_dim;
    tr->qd = tr->H * tr->hd; tr->kvd = tr->Hkv * tr->hd; tr->F = tr->mc.n_ff; tr->V = tr->mc.n_vocab;
    tr->L = tr->mc.n_layer; tr->B = tr->tc.batch; tr->T = tr->tc.seq_len; tr->n_rot = tr->mc.n_rot;
    memset(&pc, 0, sizeof pc);
    pc.n_threads = tr->tc.n_threads;
    if ((st = ds_pool_create(&pc, &tr->pool)) != DS_OK) goto fail;
    ds__ops_init(&tr->ops, tr->tc.backend);
    if ((st = ds__gemm_ws_init(&tr->ws, &tr->ops, tr->pool)) != DS_OK) goto fail;
    tr->tensors = DS__CAST(ds__ttensor *, ds__calloc((size_t)tr->L * 16 + 3, sizeof(ds__ttensor)));
    tr->lp = DS__CAST(ds__tlayer *, ds__calloc((size_t)tr->L, sizeof(ds__tlayer)));
    if (!tr->tensors || !tr->lp) {
        st = ds__fail(DS_ERR_NO_MEMORY, "train: out of memory");
        goto fail;
    }
    if (!base) ds__tr_layout(tr);
    else if ((st = ds__lora_layout(tr)) != DS_OK) goto fail;
    tr->params = DS__CAST(float *, ds__calloc(tr->n_params, sizeof(float)));
    tr->grads = DS__CAST(float *, ds__calloc(tr->n_params, sizeof(float)));
    tr->m = DS__CAST(float *, ds__calloc(tr->n_params, sizeof(float)));
    tr->v = DS__CAST(float *, ds__calloc(tr->n_params, sizeof(float)));
    N = (size_t)tr->B * tr->T;
    tr->tok = DS__CAST(int32_t *, ds__calloc(N * tr->tc.grad_accum, sizeof(int32_t)));
    tr->tgt = DS__CAST(int32_t *, ds__calloc(N * tr->tc.grad_accum, sizeof(int32_t)));
    if (!tr->params || !tr->grads || !tr->m || !tr->v || !tr->tok || !tr->tgt) {
        st = ds__fail(DS_ERR_NO_MEMORY, "train: out of memory for %zu parameters", tr->n_params);
        goto fail;
    }
    if ((st = ds__tr_alloc_acts(tr)) != DS_OK) goto fail;
#if !defined(DS_NO_DEEPSEEK2)
    if ((st = ds__dsk_tr_alloc(tr)) != DS_OK) goto fail;
#endif
    if (base && (st = ds__lora_alloc(tr)) != DS_OK) goto fail;
    if (tr->tc.precision == DS_PREC_FP16 || tr->tc.precision == DS_PREC_FP8) {
        biggest = DS__MAX(DS__MAX(N * tr->V, N * tr->F), (size_t)tr->V * tr->C);
        biggest = DS__MAX(biggest, (size_t)tr->F * tr->C);
        tr->q_floats = biggest;
        tr->qa = DS__CAST(float *, ds__calloc(biggest, sizeof(float)));
        tr->qb = DS__CAST(float *, ds__calloc(biggest, sizeof(float)));
        if (!tr->qa || !tr->qb) {
            st = ds__fail(DS_ERR_NO_MEMORY, "train: out of memory for precision buffers");
            goto fail;
        }
    }
    if (base) ds__lora_init(tr);
    else ds__tr_init_weights(tr);
    tr->rng = tr->tc.seed;
    tr->scaling = !tr->tc.no_loss_scaling && (tr->tc.precision != DS_PREC_F32 || tr->tc.loss_scale > 0.0f);
    tr->scale = tr->scaling ? (tr->tc.loss_scale > 0.0f ? tr->tc.loss_scale : 65536.0f) : 1.0f;
    *out = tr;
    return DS_OK;
fail:
    ds_trainer_free(tr);
    return st;
}

DS_API ds_status ds_trainer_create(const ds_model_config *mc, const ds_train_config *tc, ds_trainer **out) {
    if (!mc || !out) return ds__fail(DS_ERR_INVALID_ARG, "trainer_create: NULL argument");
    return ds__tr_create(mc, tc, NULL, NULL, out);
}

DS_API void ds_trainer_free(ds_trainer *tr) {
    if (!tr) return;
    ds__gemm_ws_free(&tr->ws);
    ds_pool_free(tr->pool);
    ds_free(tr->tensors); ds_free(tr->lp); ds_free(tr->params); ds_free(tr->grads); ds_free(tr->m); ds_free(tr->v);
    ds_free(tr->tok); ds_free(tr->tgt); ds_free(tr->arena); ds_free(tr->x); ds_free(tr->la); ds_free(tr->qa); ds_free(tr->qb);
    ds_free(tr->dsk.mem);
    ds_free(tr->lora); ds_free(tr->lora_x); ds_free(tr->lora_h); ds_free(tr->lora_dh); ds_free(tr->wblk);
    ds_free(tr);
}

DS_API const ds_model_config *ds_trainer_model_config(const ds_trainer *tr) { return &tr->mc; }
DS_API const ds_train_config *ds_trainer_train_config(const ds_trainer *tr) { return &tr->tc; }
DS_API float *ds_trainer_params(ds_trainer *tr, size_t *n) {
    if (n) *n = tr->n_params;
    return tr->params;
}
DS_API float *ds_trainer_grads(ds_trainer *tr, size_t *n) {
    if (n) *n = tr->n_params;
    return tr->grads;
}
DS_API int ds_trainer_step_count(const ds_trainer *tr) { return tr->step; }
DS_API ds_trainer_stats ds_trainer_get_stats(const ds_trainer *tr) {
    double N = (double)tr->B * tr->T * tr->tc.grad_accum, C = tr->C;
    double per_layer = C * (tr->qd + 2.0 * tr->kvd) + (double)tr->qd * C + 3.0 * C * tr->F;
    ds_trainer_stats st;
    st.activation_bytes = tr->arena_floats * sizeof(float);
    st.matmul_flops = 6.0 * N * (tr->L * per_layer + C * tr->V); /* forward 2, backward 4 flops per MAC */
    st.matmul_seconds = tr->ws.seconds;
    st.matmul_cpu_seconds = tr->ws.cpu_seconds;
    return st;
}

/* ---- linear layers in the compute precision ---- */
static float ds__tr_amax(const float *x, size_t n) {
    float m = 0.0f;
    size_t i;
    for (i = 0; i < n; i++) {
        float a = fabsf(x[i]);
        if (!(a <= m)) m = a; /* NaN sticks */
    }
    return m;
}

/* C = op(A) @ op(B) as the compute precision rounds it. kind_a / kind_b: 0 an activation
   (1 x 128 tiles along K), 1 a weight (128 x 128 blocks); `grad_a`: A is a scaled gradient
   whose largest value the loss scaler watches. */
static void ds__tr_matmul_ld(ds_trainer *tr, int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B,
                             int ldb, float *C, int ldc, int acc, int wa, int wb, int grad_a) {
    ds_precision p = tr->tc.precision;
    int arows = ta ? K : M, acols = ta ? M : K, brows = tb ? N : K, bcols = tb ? K : N;
    if (grad_a && tr->scaling && p == DS_PREC_FP16) tr->amax = DS__MAX(tr->amax, ds__tr_amax(A, (size_t)arows * acols));
    if (p == DS_PREC_F32 || p == DS_PREC_BF16) {
        ds__gemm(&tr->ws, p == DS_PREC_BF16, ta, tb, M, N, K, A, lda, B, ldb, C, ldc, acc);
        return;
    }
    /* K runs along columns when the operand is not transposed: tiles 1 x 128 there, else 128 x 1 */
    tr->ops.round_prec(tr->qa, A, arows, acols, lda, p, wa ? 128 : (ta ? 128 : 1), wa ? 128 : (ta ? 1 : 128));
    tr->ops.round_prec(tr->qb, B, brows, bcols, ldb, p, wb ? 128 : (tb ? 1 : 128), wb ? 128 : (tb ? 128 : 1));
    ds__gemm(&tr->ws, 0, ta, tb, M, N, K, tr->qa, lda, tr->qb, ldb, C, ldc, acc);
}
static void ds__tr_matmul(ds_trainer *tr, int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B,
                          int ldb, float *C, int acc, int wa, int wb, int grad_a) {
    ds__tr_matmul_ld(tr, ta, tb, M, N, K, A, lda, B, ldb, C, N, acc, wa, wb, grad_a);
}

/* y (N, O) (+)= x (N, I) @ w (O, I)^T */
static void ds__linear_forward(ds_trainer *tr, float *y, const float *x, const float *w, int N, int O, int I, int acc) {
    ds__tr_matmul(tr, 0, 1, N, O, I, x, I, w, I, y, acc, 0, 1, 0);
}
/* dx (N, I) (+)= dy (N, O) @ w (O, I); dw (O, I) += dy^T @ x */
static void ds__linear_backward(ds_trainer *tr, float *dx, int dx_acc, float *dw, const float *dy, const float *x,
                                const float *w, int N, int O, int I) {
    ds__tr_matmul(tr, 0, 0, N, I, O, dy, O, w, I, dx, dx_acc, 0, 1, 1);
    ds__tr_matmul(tr, 1, 0, O, I, N, dy, O, x, I, dw, 1, 0, 0, 1);
}

/* ---- weight views: the matmul op over a trainable f32 weight, or over a frozen one in its
   stored type, plus an optional low-rank update ----
   A frozen weight is dequantized a block of rows at a time into the trainer's scratch and
   multiplied with the f32 GEMM, in forward (y = x W^T) and backward (dx = dy W) alike, so
   both see the same weights and finite differences hold. A frozen F32 weight is used in
   place. The LoRA update adds y += s (drop(x) A^T) B^T, s = alpha / r; its backward adds
   dB += s dy^T h, dA += (s dy B)^T drop(x), dx += drop'(s dy B A), with h = drop(x) A^T
   recomputed (r is small) and the dropout mask regenerated from a counter-based hash, so
   nothing of it is stored between forward and backward. */
typedef struct ds__wview {
    const float *w;        /* trainable (O, I), or NULL: `mat` is the frozen weight */
    float *dw;             /* w's gradient */
    const ds__mat *mat;
    size_t la, lb;         /* the A (r, I) and B (O, r) offsets in the parameter buffer */
    int lora;              /* 1: the low-rank update applies */
    int tag;               /* the dropout stream: layer * DS__LW_COUNT + projection */
} ds__wview;

typedef struct ds__deq_args {
    const ds__mat *m;
    float *dst;
    int64_t r0;
    int n;
} ds__deq_args;
static void ds__tr_deq_rows(void *ctx, int t, int n) {
    const ds__deq_args *a = (const ds__deq_args *)ctx;
    int i, i1 = DS__MIN(a->n, (t + 1) * DS__ROWS_PER_TASK);
    size_t rb = ds__row_bytes(a->m->type, a->m->cols);
    (void)n;
    for (i = t * DS__ROWS_PER_TASK; i < i1; i++)
        ds__dequantize_row(a->m->type, DS__CAST(const uint8_t *, a->m->data) + (size_t)(a->r0 + i) * rb, a->dst + (size_t)i * a->m->cols, a->m->cols);
}
/* rows [r0, r0 + n) of m as f32: in place for F32, else dequantized into tr->wblk */
static const float *ds__tr_rows(ds_trainer *tr, const ds__mat *m, int64_t r0, int n) {
    ds__deq_args a;
    if (m->type == DS_TYPE_F32) return DS__CAST(const float *, m->data) + (size_t)r0 * m->cols;
    a.m = m; a.dst = tr->wblk; a.r0 = r0; a.n = n;
    ds_pool_run(tr->pool, ds__tr_deq_rows, &a, (n + DS__ROWS_PER_TASK - 1) / DS__ROWS_PER_TASK);
    return tr->wblk;
}
/* rows per block: the scratch's worth (F32 weights: all of them) */
static int ds__tr_block_rows(const ds_trainer *tr, const ds__mat *m) {
    if (m->type == DS_TYPE_F32) return (int)m->rows;
    return (int)DS__MAX(1, DS__MIN((size_t)m->rows, tr->wblk_floats / (size_t)m->cols));
}

/* the dropout keep factor of element i of stream (tag, micro-batch): 0 or 1 / (1 - p) */
static uint64_t ds__lora_hash(uint64_t x) {
    x ^= x >> 33;
    x *= UINT64_C(0xff51afd7ed558ccd);
    x ^= x >> 33;
    x *= UINT64_C(0xc4ceb9fe1a85ec53);
    return x ^ (x >> 33);
}
typedef struct ds__drop_args {
    float *dst;
    const float *src;
    size_t n;
    uint64_t key;
    uint32_t cut;          /* 16-bit draws below it are dropped */
    float keep;            /* 1 / (1 - p) */
    int acc;               /* 1: dst += masked src */
} ds__drop_args;
static void ds__lora_drop_chunk(void *ctx, int t, int n) {
    const ds__drop_args *a = (const ds__drop_args *)ctx;
    size_t i, i1 = DS__MIN(a->n, (size_t)(t + 1) * DS__ELEMS_PER_TASK);
    (void)n;
    for (i = (size_t)t * DS__ELEMS_PER_TASK; i < i1; i++) {   /* four 16-bit draws per hash */
        uint32_t u = (uint32_t)(ds__lora_hash(a->key + (i >> 2)) >> (16 * (i & 3))) & 0xffffu;
        float v = u < a->cut ? 0.0f : a->src[i] * a->keep;
        a->dst[i] = a->acc ? a->dst[i] + v : v;
    }
}
static void ds__lora_dropout(ds_trainer *tr, int tag, float *dst, const float *src, size_t n, int acc) {
    ds__drop_args a;
    a.dst = dst; a.src = src; a.n = n; a.acc = acc;
    a.key = ds__lora_hash(tr->lc.seed ^ ds__lora_hash(((uint64_t)tr->step << 24) ^ ((uint64_t)tr->lora_mb << 20) ^ (uint64_t)tag)) ;
    a.cut = (uint32_t)(tr->lc.dropout * 65536.0f + 0.5f);
    a.keep = 1.0f / (1.0f - tr->lc.dropout);
    ds_pool_run(tr->pool, ds__lora_drop_chunk, &a, (int)((n + DS__ELEMS_PER_TASK - 1) / DS__ELEMS_PER_TASK));
}
static int ds__lora_dropping(const ds_trainer *tr) { return tr->lora_train && tr->lc.dropout > 0.0f; }

/* tr->lora_x = drop(x) when dropout applies, else x itself; tr->lora_h = that @ A^T (N, r) */
static const float *ds__lora_down(ds_trainer *tr, const ds__wview *w, const float *x, int N, int I) {
    const float *xd = x;
    if (ds__lora_dropping(tr)) {
        ds__lora_dropout(tr, w->tag, tr->lora_x, x, (size_t)N * I, 0);
        xd = tr->lora_x;
    }
    ds__tr_matmul(tr, 0, 1, N, tr->lc.r, I, xd, I, tr->params + w->la, I, tr->lora_h, 0, 0, 1, 0);
    return xd;
}
static void ds__tr_scale(float *x, size_t n, float s) {
    size_t i;
    for (i = 0; i < n; i++) x[i] *= s;
}

/* y (N, O) (+)= x (N, I) @ W^T (+ the LoRA update) */
static void ds__tw_forward(ds_trainer *tr, float *y, const float *x, const ds__wview *w, int N, int O, int I, int acc) {
    if (w->w) {
        ds__linear_forward(tr, y, x, w->w, N, O, I, acc);
    } else {
        int r0, nb = ds__tr_block_rows(tr, w->mat);
        for (r0 = 0; r0 < O; r0 += nb) {
            int n = DS__MIN(nb, O - r0);
            ds__tr_matmul_ld(tr, 0, 1, N, n, I, x, I, ds__tr_rows(tr, w->mat, r0, n), I, y + r0, O, acc, 0, 1, 0);
        }
    }
    if (w->lora) {
        int r = tr->lc.r;
        ds__lora_down(tr, w, x, N, I);
        ds__tr_scale(tr->lora_h, (size_t)N * r, tr->lc.alpha / (float)r);
        ds__tr_matmul(tr, 0, 1, N, O, r, tr->lora_h, r, tr->params + w->lb, r, y, 1, 0, 1, 0);
    }
}

/* dx (N, I) (+)= dy (N, O) @ W (+ the LoRA path); parameter gradients are added */
static void ds__tw_backward(ds_trainer *tr, float *dx, int dx_acc, const float *dy, const float *x, const ds__wview *w, int N, int O, int I) {
    if (w->w) {
        ds__linear_backward(tr, dx, dx_acc, w->dw, dy, x, w->w, N, O, I);
    } else {
        int r0, nb = ds__tr_block_rows(tr, w->mat);
        for (r0 = 0; r0 < O; r0 += nb) {
            int n = DS__MIN(nb, O - r0);
            ds__tr_matmul_ld(tr, 0, 0, N, I, n, dy + r0, O, ds__tr_rows(tr, w->mat, r0, n), I, dx, I, dx_acc || r0 > 0, 0, 1, 1);
        }
    }
    if (w->lora) {
        int r = tr->lc.r;
        float s = tr->lc.alpha / (float)r;
        const float *xd = ds__lora_down(tr, w, x, N, I);
        ds__tr_scale(tr->lora_h, (size_t)N * r, s);
        ds__tr_matmul(tr, 1, 0, O, r, N, dy, O, tr->lora_h, r, tr->grads + w->lb, 1, 0, 0, 1);      /* dB += dy^T (s h) */
        ds__tr_matmul(tr, 0, 0, N, r, O, dy, O, tr->params + w->lb, r, tr->lora_dh, 0, 0, 1, 1);    /* dh = s dy B */
        ds__tr_scale(tr->lora_dh, (size_t)N * r, s);
        ds__tr_matmul(tr, 1, 0, r, I, N, tr->lora_dh, r, xd, I, tr->grads + w->la, 1, 0, 0, 1);     /* dA += dh^T drop(x) */
        if (ds__lora_dropping(tr)) {   /* dx += mask * (dh A) */
            ds__tr_matmul(tr, 0, 0, N, I, r, tr->lora_dh, r, tr->params + w->la, I, tr->lora_x, 0, 0, 1, 1);
            ds__lora_dropout(tr, w->tag, dx, tr->lora_x, (size_t)N * I, 1);
        } else {
            ds__tr_matmul(tr, 0, 0, N, I, r, tr->lora_dh, r, tr->params + w->la, I, dx, 1, 0, 1, 1);
        }
    }
}

/* projection k of layer l: the trainable weight, or the base's frozen one with its LoRA pair */
static ds__wview ds__tr_w(ds_trainer *tr, int l, int k) {
    ds__wview w;
    memset(&w, 0, sizeof w);
    if (!tr->base) {
        const ds__tlayer *p = &tr->lp[l];
        size_t off = k == DS__LW_Q ? p->wq : k == DS__LW_K ? p->wk : k == DS__LW_V ? p->wv : k == DS__LW_O ? p->wo :
                     k == DS__LW_GATE ? p->wg : k == DS__LW_UP ? p->wu : p->wd;
        w.w = tr->params + off;
        w.dw = tr->grads + off;
    } else {
        const ds__layer *L = &tr->base->layers[l];
        const size_t *ab = tr->lora + 2 * ((size_t)l * DS__LW_COUNT + k);
        w.mat = k == DS__LW_Q ? &L->gqa.wq : k == DS__LW_K ? &L->gqa.wk : k == DS__LW_V ? &L->gqa.wv : k == DS__LW_O ? &L->gqa.wo :
                k == DS__LW_GATE ? &L->ffn.gate : k == DS__LW_UP ? &L->ffn.up : &L->ffn.down;
        w.lora = ab[0] != (size_t)-1;
        w.la = ab[0];
        w.lb = ab[1];
        w.tag = l * DS__LW_COUNT + k;
    }
    return w;
}
/* a norm weight: the trainer's, or the base's (frozen: no gradient) */
static const float *ds__tr_normw(const ds_trainer *tr, int l, int ffn) {
    if (!tr->base) return tr->params + (l < 0 ? tr->off_norm : ffn ? tr->lp[l].ffn_norm : tr->lp[l].attn_norm);
    return l < 0 ? tr->base->output_norm : ffn ? tr->base->layers[l].ffn_norm : tr->base->layers[l].attn_norm;
}
static float *ds__tr_normg(const ds_trainer *tr, int l, int ffn) {
    if (tr->base) return NULL;
    return tr->grads + (l < 0 ? tr->off_norm : ffn ? tr->lp[l].ffn_norm : tr->lp[l].attn_norm);
}
/* the output projection (tied or not): trainable, or the base's frozen one */
static ds__wview ds__tr_out(ds_trainer *tr) {
    ds__wview w;
    memset(&w, 0, sizeof w);
    if (tr->base) {
        w.mat = &tr->base->output;
    } else {
        w.w = tr->params + tr->off_out;
        w.dw = tr->grads + tr->off_out;
    }
    return w;
}

/* ---- the model ---- */
static void ds__tr_gqa_forward(ds_trainer *tr, int l, ds__tacts *a, const float *x, int B, int T) {
    ds__wview wq = ds__tr_w(tr, l, DS__LW_Q), wk = ds__tr_w(tr, l, DS__LW_K), wv = ds__tr_w(tr, l, DS__LW_V), wo = ds__tr_w(tr, l, DS__LW_O);
    int N = B * T;
    ds__tw_forward(tr, a->q, a->ln1, &wq, N, tr->qd, tr->C, 0);
    ds__tw_forward(tr, a->k, a->ln1, &wk, N, tr->kvd, tr->C, 0);
    ds__tw_forward(tr, a->v, a->ln1, &wv, N, tr->kvd, tr->C, 0);
    ds__rope_apply(a->q, tr->cs, N, T, tr->H, tr->hd, tr->n_rot, 1.0f);
    ds__rope_apply(a->k, tr->cs, N, T, tr->Hkv, tr->hd, tr->n_rot, 1.0f);
    ds__attention_forward(&tr->ops, tr->pool, a->att, a->probs, a->q, a->k, a->v, B, T, tr->H, tr->Hkv, tr->hd);
    tr->ops.copy(a->xmid, x, sizeof(float) * (size_t)N * tr->C);
    ds__tw_forward(tr, a->xmid, a->att, &wo, N, tr->C, tr->qd, 1);
}

static void ds__tr_ffn_forward(ds_trainer *tr, int l, ds__tacts *a, float *xo, int N, int recomputing) {
    ds__wview wg = ds__tr_w(tr, l, DS__LW_GATE), wu = ds__tr_w(tr, l, DS__LW_UP), wd = ds__tr_w(tr, l, DS__LW_DOWN);
    ds__tw_forward(tr, a->g, a->ln2, &wg, N, tr->F, tr->C, 0);
    ds__tw_forward(tr, a->u, a->ln2, &wu, N, tr->F, tr->C, 0);
    ds__swiglu_forward(tr->pool, a->h, a->g, a->u, (size_t)N * tr->F);
    if (recomputing) return;
    tr->ops.copy(xo, a->xmid, sizeof(float) * (size_t)N * tr->C);
    ds__tw_forward(tr, xo, a->h, &wd, N, tr->C, tr->F, 1);
}

/* One layer, x[l] -> x[l + 1], its attention and feed-forward those its config names (as
   the session's ds__layer_forward walks them). `recomputing`: backward's second pass under
   activation checkpointing. The layer output x[l + 1] is still stored, so a dense FFN stops
   before its down projection (about a fifth of the layer's FLOPs): backward needs only that
   projection's input h. */
static void ds__tr_layer_forward(ds_trainer *tr, int l, ds__tacts *a, int B, int T, int recomputing) {
    int N = B * T;
    float *x = tr->x[l], *xo = tr->x[l + 1];
    ds__rmsnorm_forward(tr->pool, a->ln1, a->rstd1, x, ds__tr_normw(tr, l, 0), N, tr->C, tr->mc.norm_eps);
    switch (tr->mc.layers[l].attn) {
#if !defined(DS_NO_DEEPSEEK2)
    case DS_ATTN_MLA:
        ds__dsk_tr_attn_forward(tr, l, a, B, T);
        break;
#endif
    default:
        ds__tr_gqa_forward(tr, l, a, x, B, T);
        break;
    }
    ds__rmsnorm_forward(tr->pool, a->ln2, a->rstd2, a->xmid, ds__tr_normw(tr, l, 1), N, tr->C, tr->mc.norm_eps);
    switch (tr->mc.layers[l].ffn) {
#if !defined(DS_NO_DEEPSEEK2)
    case DS_FFN_MOE:
        ds__dsk_tr_ffn_forward(tr, l, a, xo, B, T);
        break;
#endif
    default:
        ds__tr_ffn_forward(tr, l, a, xo, N, recomputing);
        break;
    }
}

static void ds__tr_ffn_backward(ds_trainer *tr, int l, const ds__tacts *a, int N) {
    ds__wview wg = ds__tr_w(tr, l, DS__LW_GATE), wu = ds__tr_w(tr, l, DS__LW_UP), wd = ds__tr_w(tr, l, DS__LW_DOWN);
    ds__tw_backward(tr, tr->dh, 0, tr->dres, a->h, &wd, N, tr->C, tr->F);
    ds__swiglu_backward(tr->pool, tr->dg, tr->du, tr->dh, a->g, a->u, (size_t)N * tr->F);
    ds__tw_backward(tr, tr->dln, 0, tr->dg, a->ln2, &wg, N, tr->F, tr->C);
    ds__tw_backward(tr, tr->dln, 1, tr->du, a->ln2, &wu, N, tr->F, tr->C);
}

static void ds__tr_gqa_backward(ds_trainer *tr, int l, const ds__tacts *a, int B, int T) {
    ds__wview wq = ds__tr_w(tr, l, DS__LW_Q), wk = ds__tr_w(tr, l, DS__LW_K), wv = ds__tr_w(tr, l, DS__LW_V), wo = ds__tr_w(tr, l, DS__LW_O);
    int N = B * T;
    ds__tw_backward(tr, tr->datt, 0, tr->dres, a->att, &wo, N, tr->C, tr->qd);
    ds__attention_backward(&tr->ops, tr->pool, tr->dq, tr->dk, tr->dv, tr->datt, a->att, a->probs, a->q, a->k, a->v, B, T, tr->H, tr->Hkv, tr->hd);
    ds__rope_apply(tr->dq, tr->cs, N, T, tr->H, tr->hd, tr->n_rot, -1.0f);
    ds__rope_apply(tr->dk, tr->cs, N, T, tr->Hkv, tr->hd, tr->n_rot, -1.0f);
    ds__tw_backward(tr, tr->dln, 0, tr->dq, a->ln1, &wq, N, tr->qd, tr->C);
    ds__tw_backward(tr, tr->dln, 1, tr->dk, a->ln1, &wk, N, tr->kvd, tr->C);
    ds__tw_backward(tr, tr->dln, 1, tr->dv, a->ln1, &wv, N, tr->kvd, tr->C);
}

/* tr->dres holds d(layer output) on entry and d(layer input) on return */
static void ds__tr_layer_backward(ds_trainer *tr, int l, const ds__tacts *a, int B, int T) {
    int N = B * T;
    switch (tr->mc.layers[l].ffn) {
#if !defined(DS_NO_DEEPSEEK2)
    case DS_FFN_MOE:
        ds__dsk_tr_ffn_backward(tr, l, a, B, T);
        break;
#endif
    default:
        ds__tr_ffn_backward(tr, l, a, N);
        break;
    }
    ds__rmsnorm_backward(tr->pool, tr->dres, ds__tr_normg(tr, l, 1), tr->dln, a->xmid, ds__tr_normw(tr, l, 1), a->rstd2, N, tr->C);
    switch (tr->mc.layers[l].attn) {
#if !defined(DS_NO_DEEPSEEK2)
    case DS_ATTN_MLA:
        ds__dsk_tr_attn_backward(tr, l, a, B, T);
        break;
#endif
    default:
        ds__tr_gqa_backward(tr, l, a, B, T);
        break;
    }
    ds__rmsnorm_backward(tr->pool, tr->dres, ds__tr_normg(tr, l, 0), tr->dln, tr->x[l], ds__tr_normw(tr, l, 0), a->rstd1, N, tr->C);
}

static ds__tacts *ds__tr_acts(ds_trainer *tr, int l) { return tr->tc.recompute ? &tr->la[0] : &tr->la[l]; }

/* positions whose target counts (targets < 0 are ignored); at least 1 */
static int ds__tr_counted(const int32_t *tgt, int N) {
    int i, n = 0;
    for (i = 0; i < N; i++) n += tgt[i] >= 0;
    return DS__MAX(n, 1);
}

/* forward through the loss; tr->logits then holds probabilities. Returns the mean loss over
   the counted positions. */
static float ds__tr_forward(ds_trainer *tr, const int32_t *tok, const int32_t *tgt, int B, int T) {
    int l, N = B * T, i;
    double sum = 0.0;
    ds__wview wout = ds__tr_out(tr);
    if (tr->base) tr->ops.embed(tr->x[0], tr->base->tok_embd.type, tr->base->tok_embd.data, tok, N, tr->C);   /* the frozen table, in its stored type */
    else tr->ops.embed(tr->x[0], DS_TYPE_F32, tr->params + tr->off_embd, tok, N, tr->C);
    for (l = 0; l < tr->L; l++) ds__tr_layer_forward(tr, l, ds__tr_acts(tr, l), B, T, 0);
    ds__rmsnorm_forward(tr->pool, tr->lnf, tr->rstdf, tr->x[tr->L], ds__tr_normw(tr, -1, 0), N, tr->C, tr->mc.norm_eps);
    ds__tw_forward(tr, tr->logits, tr->lnf, &wout, N, tr->V, tr->C, 0);
    ds__crossentropy_forward(&tr->ops, tr->pool, tr->logits, tr->losses, tgt, N, tr->V);
    for (i = 0; i < N; i++) sum += tr->losses[i];
    return (float)(sum / ds__tr_counted(tgt, N));
}

static void ds__tr_backward(ds_trainer *tr, const int32_t *tok, const int32_t *tgt, int B, int T, float dscale) {
    int l, N = B * T;
    ds__wview wout = ds__tr_out(tr);
    tr->dsk.dscale = dscale;
    ds__crossentropy_backward(&tr->ops, tr->pool, tr->logits, tgt, N, tr->V, dscale / (float)ds__tr_counted(tgt, N));
    ds__tw_backward(tr, tr->dln, 0, tr->logits, tr->lnf, &wout, N, tr->V, tr->C);
    memset(tr->dres, 0, sizeof(float) * (size_t)N * tr->C);
    ds__rmsnorm_backward(tr->pool, tr->dres, ds__tr_normg(tr, -1, 0), tr->dln, tr->x[tr->L], ds__tr_normw(tr, -1, 0), tr->rstdf, N, tr->C);
    for (l = tr->L - 1; l >= 0; l--) {
        /* the shared activation set still holds the last layer from the forward */
        if (tr->tc.recompute && l < tr->L - 1) ds__tr_layer_forward(tr, l, &tr->la[0], B, T, 1);
        ds__tr_layer_backward(tr, l, ds__tr_acts(tr, l), B, T);
    }
    if (!tr->base) ds__embedding_backward(tr->grads + tr->off_embd, tr->dres, tok, N, tr->C);
}

static ds_status ds__tr_check_batch(const ds_trainer *tr, const int32_t *tok, const int32_t *tgt, int B, int T) {
    int i;
    if (!tok || !tgt || B <= 0 || T <= 0 || B > tr->B || T > tr->T) return ds__fail(DS_ERR_INVALID_ARG, "train: batch %d x %d does not fit the trainer's %d x %d", B, T, tr->B, tr->T);
    for (i = 0; i < B * T; i++)
        if (tok[i] < 0 || tok[i] >= tr->V || tgt[i] < DS_TARGET_IGNORE || tgt[i] >= tr->V) return ds__fail(DS_ERR_BOUNDS, "train: token %d at %d is outside the vocabulary of %d", tok[i] < 0 || tok[i] >= tr->V ? tok[i] : tgt[i], i, tr->V);
    return DS_OK;
}

DS_API ds_status ds_trainer_loss(ds_trainer *tr, const int32_t *tokens, const int32_t *targets, int B, int T, float *loss) {
    ds_status st;
    if (!tr || !loss) return ds__fail(DS_ERR_INVALID_ARG, "trainer_loss: NULL argument");
    if ((st = ds__tr_check_batch(tr, tokens, targets, B, T)) != DS_OK) return st;
    *loss = ds__tr_forward(tr, tokens, targets, B, T);
    return DS_OK;
}

DS_API ds_status ds_trainer_next_probs(ds_trainer *tr, const int32_t *tokens, int T, float *probs) {
    ds_status st;
    if (!tr || !probs) return ds__fail(DS_ERR_INVALID_ARG, "trainer_next_probs: NULL argument");
    if ((st = ds__tr_check_batch(tr, tokens, tokens, 1, T)) != DS_OK) return st;
    ds__tr_forward(tr, tokens, tokens, 1, T);
    memcpy(probs, tr->logits + (size_t)(T - 1) * tr->V, sizeof(float) * (size_t)tr->V);
    return DS_OK;
}

DS_API ds_status ds_trainer_grad(ds_trainer *tr, const int32_t *tokens, const int32_t *targets, int B, int T, float scale, float *loss) {
    ds_status st;
    float l;
    if (!tr) return ds__fail(DS_ERR_INVALID_ARG, "trainer_grad: NULL trainer");
    if ((st = ds__tr_check_batch(tr, tokens, targets, B, T)) != DS_OK) return st;
    tr->lora_train = 1;   /* LoRA dropout: training passes only */
    l = ds__tr_forward(tr, tokens, targets, B, T);
    ds__tr_backward(tr, tokens, targets, B, T, scale);
    tr->lora_train = 0;
    if (loss) *loss = l;
    return DS_OK;
}

/* ---- token shards and batches ------------------------------------------------------------- */
#define DS__SHARD_MAGIC 0x4b545344u /* "DSTK" little-endian */
#define DS__SHARD_HEADER 32

static void ds__put_u32(uint8_t *p, uint32_t v) {
    int i;
    for (i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t ds__get_u32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

/* header: magic, version 1, bytes per token, n_vocab (u32 each), count, vocabulary fingerprint
   (u64 each; shards written before the fingerprint have 0 there) */
DS_API ds_status ds_token_shard_write(const char *path, const uint32_t *tokens, uint64_t n, int n_vocab) {
    return ds_token_shard_write_vocab(path, tokens, n, n_vocab, 0);
}
DS_API ds_status ds_token_shard_write_vocab(const char *path, const uint32_t *tokens, uint64_t n, int n_vocab, uint64_t vocab_fp) {
    uint8_t hdr[DS__SHARD_HEADER], buf[4096];
    uint32_t width = n_vocab > 65536 ? 4 : 2;
    uint64_t i;
    size_t fill = 0;
    FILE *f;
    if (!path || (!tokens && n) || n_vocab <= 0) return ds__fail(DS_ERR_INVALID_ARG, "token shard: bad arguments");
    memset(hdr, 0, sizeof hdr);
    ds__put_u32(hdr, DS__SHARD_MAGIC);
    ds__put_u32(hdr + 4, 1);
    ds__put_u32(hdr + 8, width);
    ds__put_u32(hdr + 12, (uint32_t)n_vocab);
    ds__put_u32(hdr + 16, (uint32_t)n);
    ds__put_u32(hdr + 20, (uint32_t)(n >> 32));
    ds__put_u32(hdr + 24, (uint32_t)vocab_fp);
    ds__put_u32(hdr + 28, (uint32_t)(vocab_fp >> 32));
    f = fopen(path, "wb");
    if (!f) return ds__fail(DS_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    fwrite(hdr, 1, sizeof hdr, f);
    for (i = 0; i < n; i++) {
        if (tokens[i] >= (uint32_t)n_vocab) {
            fclose(f);
            return ds__fail(DS_ERR_BOUNDS, "%s: token %u at %llu is outside the vocabulary of %d", path, tokens[i], (unsigned long long)i, n_vocab);
        }
        ds__put_u32(buf + fill, tokens[i]);
        fill += width;
        if (fill + 4 > sizeof buf || i + 1 == n) {
            fwrite(buf, 1, fill, f);
            fill = 0;
        }
    }
    if (fflush(f) != 0 || ferror(f)) {
        fclose(f);
        remove(path);
        return ds__fail(DS_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    }
    if (fclose(f) != 0) {
        remove(path);
        return ds__fail(DS_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    }
    return DS_OK;
}

DS_API uint64_t ds_tokenizer_fingerprint(const ds_tokenizer *t) {
    ds__xxh64 h;
    int32_t i;
    if (!t) return 0;
    ds__xxh64_init(&h, 0);
    for (i = 0; i < t->n_vocab; i++) {
        size_t n;
        const char *p = ds__tok_str(t, i, &n);
        uint8_t len[8];
        ds__gguf_enc64(len, (uint64_t)n);
        ds__xxh64_update(&h, len, 8);
        ds__xxh64_update(&h, p, n);
    }
    return ds__xxh64_digest(&h);
}

DS_API ds_status ds_gguf_vocab_fingerprint(const ds_gguf *g, uint64_t *fp, int *n_vocab) {
    ds_gguf_type et;
    uint64_t n, i, pos = 0;
    const void *data;
    const uint8_t *p;
    if (!g) return ds__fail(DS_ERR_INVALID_ARG, "vocab_fingerprint: NULL argument");
    if (ds_gguf_get_arr(g, "tokenizer.ggml.tokens", &et, &n, &data) != DS_OK || et != DS_GGUF_STRING || n > INT_MAX)
        return ds__fail(DS_ERR_NOT_FOUND, "gguf: no tokenizer.ggml.tokens string array");
    p = DS__CAST(const uint8_t *, data);
    for (i = 0; i < n; i++) pos += 8 + ds__gguf_u64(p + pos);   /* the reader checked every length */
    if (fp) *fp = ds_xxh64(p, (size_t)pos, 0);
    if (n_vocab) *n_vocab = (int)n;
    return DS_OK;
}

typedef struct ds__shard {
    ds_mapped_file file;
    const uint8_t *tok;
    uint64_t n, vocab_fp;
    int width, n_vocab;
} ds__shard;

struct ds_train_data {
    ds__shard split[2];   /* train, validation */
};

/* the header of a shard held in memory (data, size); `path` names it in messages */
static ds_status ds__shard_parse(ds__shard *s, const uint8_t *p, size_t size, const char *path) {
    if (size < DS__SHARD_HEADER || ds__get_u32(p) != DS__SHARD_MAGIC) return ds__fail(DS_ERR_FORMAT, "%s: not a token shard (bad magic)", path);
    if (ds__get_u32(p + 4) != 1) return ds__fail(DS_ERR_UNSUPPORTED, "%s: token shard version %u", path, ds__get_u32(p + 4));
    s->width = (int)ds__get_u32(p + 8);
    s->n_vocab = (int)ds__get_u32(p + 12);
    s->n = (uint64_t)ds__get_u32(p + 16) | (uint64_t)ds__get_u32(p + 20) << 32;
    s->vocab_fp = (uint64_t)ds__get_u32(p + 24) | (uint64_t)ds__get_u32(p + 28) << 32;
    if (s->width != 2 && s->width != 4) return ds__fail(DS_ERR_FORMAT, "%s: %d bytes per token", path, s->width);
    if (s->n_vocab <= 0) return ds__fail(DS_ERR_FORMAT, "%s: vocabulary size %d", path, s->n_vocab);
    if (s->n > (size - DS__SHARD_HEADER) / (uint64_t)s->width) return ds__fail(DS_ERR_BOUNDS, "%s: header says %llu tokens, the file holds %llu", path, (unsigned long long)s->n, (unsigned long long)((size - DS__SHARD_HEADER) / (uint64_t)s->width));
    s->tok = p + DS__SHARD_HEADER;
    return DS_OK;
}
static ds_status ds__shard_open(ds__shard *s, const char *path) {
    ds_status st = ds_map_file(path, &s->file);
    if (st != DS_OK) return st;
    return ds__shard_parse(s, s->file.data, s->file.size, path);
}
static uint32_t ds__shard_token(const ds__shard *s, uint64_t i) {
    const uint8_t *p = s->tok + i * (uint64_t)s->width;
    return s->width == 2 ? (uint32_t)(p[0] | p[1] << 8) : ds__get_u32(p);
}

DS_API ds_status ds_train_data_open(const char *train_path, const char *val_path, ds_train_data **out) {
    ds_train_data *d;
    ds_status st;
    if (!train_path || !out) return ds__fail(DS_ERR_INVALID_ARG, "train_data_open: NULL argument");
    *out = NULL;
    d = DS__CAST(ds_train_data *, ds__calloc(1, sizeof *d));
    if (!d) return ds__fail(DS_ERR_NO_MEMORY, "train data: out of memory");
    if ((st = ds__shard_open(&d->split[0], train_path)) != DS_OK || (val_path && (st = ds__shard_open(&d->split[1], val_path)) != DS_OK)) {
        ds_train_data_free(d);
        return st;
    }
    if (val_path && (d->split[1].n_vocab != d->split[0].n_vocab || d->split[1].vocab_fp != d->split[0].vocab_fp)) {
        st = ds__fail(DS_ERR_FORMAT, "%s and %s were made with different vocabularies (%d and %d tokens)", train_path, val_path, d->split[0].n_vocab, d->split[1].n_vocab);
        ds_train_data_free(d);
        return st;
    }
    *out = d;
    return DS_OK;
}
DS_API void ds_train_data_free(ds_train_data *d) {
    if (!d) return;
    ds_unmap_file(&d->split[0].file);
    ds_unmap_file(&d->split[1].file);
    ds_free(d);
}
DS_API uint64_t ds_train_data_count(const ds_train_data *d, int val) { return d ? d->split[val ? 1 : 0].n : 0; }
DS_API void ds_train_data_vocab(const ds_train_data *d, int *n_vocab, uint64_t *vocab_fp) {
    if (n_vocab) *n_vocab = d ? d->split[0].n_vocab : 0;
    if (vocab_fp) *vocab_fp = d ? d->split[0].vocab_fp : 0;
}

/* one window of T + 1 tokens starting at `start` -> tokens / targets */
static ds_status ds__tr_window(const ds_trainer *tr, const ds__shard *s, uint64_t start, int32_t *tok, int32_t *tgt) {
    int t;
    for (t = 0; t <= tr->T; t++) {
        uint32_t v = ds__shard_token(s, start + (uint64_t)t);
        if (v >= (uint32_t)tr->V) return ds__fail(DS_ERR_BOUNDS, "train data: token %u is outside the model's vocabulary of %d", v, tr->V);
        if (t < tr->T) tok[t] = (int32_t)v;
        if (t > 0) tgt[t - 1] = (int32_t)v;
    }
    return DS_OK;
}

/* grad_accum * B random windows of the training split; the order follows the trainer's RNG */
static ds_status ds__tr_fill_batches(ds_trainer *tr, ds_train_data *d) {
    const ds__shard *s = &d->split[0];
    int i, n = tr->tc.grad_accum * tr->B;
    ds_status st;
    if (s->n < (uint64_t)tr->T + 2) return ds__fail(DS_ERR_INVALID_ARG, "train data: %llu tokens, a sequence needs %d", (unsigned long long)s->n, tr->T + 1);
    for (i = 0; i < n; i++) {
        uint64_t start = ds__tr_next(&tr->rng) % (s->n - (uint64_t)tr->T);
        if ((st = ds__tr_window(tr, s, start, tr->tok + (size_t)i * tr->T, tr->tgt + (size_t)i * tr->T)) != DS_OK) return st;
        tr->cursor++;
    }
    return DS_OK;
}

DS_API ds_status ds_trainer_eval(ds_trainer *tr, ds_train_data *d, float *loss) {
    const ds__shard *s;
    int b, i, nb;
    double sum = 0.0;
    ds_status st;
    if (!tr || !d || !loss) return ds__fail(DS_ERR_INVALID_ARG, "trainer_eval: NULL argument");
    s = &d->split[1];
    if (s->n < (uint64_t)tr->T + 2) return ds__fail(DS_ERR_STATE, "train: no validation split (or shorter than a sequence)");
    nb = tr->tc.eval_batches;
    /* evenly spaced windows: the same ones every time */
    for (b = 0; b < nb; b++) {
        for (i = 0; i < tr->B; i++) {
            uint64_t k = (uint64_t)b * tr->B + i, span = s->n - (uint64_t)tr->T - 1;
            if ((st = ds__tr_window(tr, s, span * k / ((uint64_t)nb * tr->B), tr->tok + (size_t)i * tr->T, tr->tgt + (size_t)i * tr->T)) != DS_OK) return st;
        }
        sum += ds__tr_forward(tr, tr->tok, tr->tgt, tr->B, tr->T);
    }
    *loss = (float)(sum / nb);
    return DS_OK;
}

/* ---- the optimizer step ------------------------------------------------------------------- */
/* linear warm-up to lr, then cosine down to min_lr * lr at the last step */
static float ds__tr_lr(const ds_train_config *tc, int step) {
    float lo = tc->min_lr < 0.0f ? 0.0f : tc->min_lr * tc->lr;
    double prog;
    if (step < tc->warmup) return tc->lr * (float)(step + 1) / (float)tc->warmup;
    if (tc->steps <= tc->warmup) return tc->lr;
    prog = (double)(step - tc->warmup) / (double)(tc->steps - tc->warmup);
    if (prog > 1.0) prog = 1.0;
    return lo + (float)(0.5 * (1.0 + cos(3.141592653589793 * prog))) * (tc->lr - lo);
}

typedef struct ds__adam_args {
    ds_trainer *tr;
    float lr, gscale, bc1, bc2;
    double *partial;
} ds__adam_args;
#define DS__ADAM_CHUNK 16384

static void ds__tr_sumsq_chunk(void *ctx, int t, int n) {
    ds__adam_args *a = (ds__adam_args *)ctx;
    size_t i, i0 = (size_t)t * DS__ADAM_CHUNK, i1 = DS__MIN(a->tr->n_params, i0 + DS__ADAM_CHUNK);
    double s = 0.0;
    (void)n;
    for (i = i0; i < i1; i++) s += (double)a->tr->grads[i] * a->tr->grads[i];
    a->partial[t] = s;
}

/* AdamW on elements [i0, i1) of one tensor: decay on matrices only */
static void ds__tr_adam_tensor(ds_trainer *tr, const ds__ttensor *t, size_t i0, size_t i1, const ds__adam_args *a) {
    const ds_train_config *tc = &tr->tc;
    ds__adamw w;
    w.p = tr->params;
    w.m = tr->m;
    w.v = tr->v;
    w.g = tr->grads;
    w.gscale = a->gscale;
    w.beta1 = tc->beta1;
    w.beta2 = tc->beta2;
    w.bc1 = a->bc1;
    w.bc2 = a->bc2;
    w.lr = a->lr;
    w.eps = tc->adam_eps;
    w.decay = (t->rows > 1 && tc->weight_decay > 0.0f) ? 1.0f - a->lr * tc->weight_decay : 1.0f;
    ds__adamw_update(&tr->ops, &w, i0, i1);
}

static void ds__tr_adam_chunk(void *ctx, int t, int n) {
    ds__adam_args *a = (ds__adam_args *)ctx;
    ds_trainer *tr = a->tr;
    size_t i0 = (size_t)t * DS__ADAM_CHUNK, i1 = DS__MIN(tr->n_params, i0 + DS__ADAM_CHUNK);
    int k;
    (void)n;
    for (k = 0; k < tr->n_tensors; k++) {
        const ds__ttensor *ts = &tr->tensors[k];
        size_t a0 = DS__MAX(i0, ts->off), a1 = DS__MIN(i1, ts->off + (size_t)ts->rows * ts->cols);
        if (a0 < a1) ds__tr_adam_tensor(tr, ts, a0, a1, a);
    }
}

/* the loss scaler: skip and halve on inf/NaN; double after a window of clean steps; halve
   early when the largest rounded gradient value of recent steps, times 2 for headroom,
   would come near the format's largest finite value at the current scale */
static float ds__tr_prec_max(ds_precision p) { return p == DS_PREC_FP16 ? 65504.0f : FLT_MAX; }

static void ds__tr_scaler_update(ds_trainer *tr, int overflow) {
    float hist = 0.0f, lim = ds__tr_prec_max(tr->tc.precision) * 0.5f;
    int i;
    if (!tr->scaling) return;
    if (overflow) {
        tr->scale = DS__MAX(tr->scale * 0.5f, 1.0f / 65536.0f);
        tr->clean_steps = 0;
        return;
    }
    memmove(tr->amax_hist + 1, tr->amax_hist, sizeof(float) * (DS__SCALE_HIST - 1));
    tr->amax_hist[0] = tr->amax / tr->scale;  /* unscaled */
    for (i = 0; i < DS__SCALE_HIST; i++) hist = DS__MAX(hist, tr->amax_hist[i]);
    if (hist * tr->scale * 2.0f > lim && tr->scale > 1.0f) {
        tr->scale *= 0.5f;
        tr->clean_steps = 0;
        return;
    }
    if (++tr->clean_steps >= tr->tc.loss_scale_window) {
        tr->clean_steps = 0;
        if (hist * tr->scale * 4.0f <= lim) tr->scale *= 2.0f;
    }
}

/* 1 when buf[0, n_params) holds no inf or NaN */
typedef struct ds__finite_args {
    const float *buf;
    size_t n;
    double *bad;
} ds__finite_args;
static void ds__tr_finite_chunk(void *ctx, int t, int n) {
    ds__finite_args *a = (ds__finite_args *)ctx;
    size_t i, i0 = (size_t)t * DS__ADAM_CHUNK, i1 = DS__MIN(a->n, i0 + DS__ADAM_CHUNK);
    float acc = 0.0f;
    (void)n;
    for (i = i0; i < i1; i++) acc += a->buf[i] * 0.0f;   /* 0 unless some value is inf or NaN */
    a->bad[t] = acc == 0.0f ? 0.0 : 1.0;
}
static int ds__tr_finite(ds_trainer *tr, const float *buf) {
    ds__finite_args a;
    int n_chunks = (int)((tr->n_params + DS__ADAM_CHUNK - 1) / DS__ADAM_CHUNK), i, ok = 1;
    a.buf = buf;
    a.n = tr->n_params;
    a.bad = DS__CAST(double *, ds__calloc((size_t)n_chunks, sizeof(double)));
    if (!a.bad) {   /* no memory for the flags: check on this thread */
        size_t j;
        for (j = 0; j < tr->n_params; j++)
            if (!(fabsf(buf[j]) <= FLT_MAX)) return 0;
        return 1;
    }
    ds_pool_run(tr->pool, ds__tr_finite_chunk, &a, n_chunks);
    for (i = 0; i < n_chunks; i++) ok &= a.bad[i] == 0.0;
    ds_free(a.bad);
    return ok;
}

static ds_status ds__tr_apply(ds_trainer *tr, float loss, ds_train_step_info *info) {
    ds__adam_args a;
    int n_chunks = (int)((tr->n_params + DS__ADAM_CHUNK - 1) / DS__ADAM_CHUNK), i, overflow;
    double ss = 0.0, norm;
    float clip = 1.0f;
    memset(&a, 0, sizeof a);
    a.tr = tr;
    a.partial = DS__CAST(double *, ds__calloc((size_t)n_chunks, sizeof(double)));
    if (!a.partial) return ds__fail(DS_ERR_NO_MEMORY, "train: out of memory");
    ds_pool_run(tr->pool, ds__tr_sumsq_chunk, &a, n_chunks);
    for (i = 0; i < n_chunks; i++) ss += a.partial[i];
    norm = sqrt(ss) / tr->scale;
    overflow = !(norm < 1e300) || !(tr->amax < FLT_MAX) || tr->amax != tr->amax || !(fabsf(loss) <= FLT_MAX);
    a.lr = ds__tr_lr(&tr->tc, tr->step);
    if (info) {
        memset(info, 0, sizeof *info);
        info->loss = loss;
        info->lr = a.lr;
        info->grad_norm = (float)norm;
        info->loss_scale = tr->scale;
        info->skipped = overflow;
        info->tokens = (double)tr->tc.grad_accum * tr->B * tr->T;
    }
    if (!overflow) {
        if (tr->tc.grad_clip > 0.0f && norm > tr->tc.grad_clip) clip = (float)(tr->tc.grad_clip / norm);
        tr->adam_t++;
        a.gscale = clip / tr->scale;
        a.bc1 = 1.0f - (float)pow(tr->tc.beta1, tr->adam_t);
        a.bc2 = 1.0f - (float)pow(tr->tc.beta2, tr->adam_t);
        ds_pool_run(tr->pool, ds__tr_adam_chunk, &a, n_chunks);
    } else {
        tr->skipped_total++;
    }
    ds__tr_scaler_update(tr, overflow);
    tr->step++;
    if (info) {
        info->step = tr->step;
        info->skipped_total = tr->skipped_total;
    }
    ds_free(a.partial);
    if (!overflow && !ds__tr_finite(tr, tr->params))
        return ds__fail(DS_ERR_STATE, "train: step %d: the update made weights inf or NaN (learning rate %g too high?)", tr->step, (double)a.lr);
    return DS_OK;
}

DS_API ds_status ds_trainer_step_tokens(ds_trainer *tr, const int32_t *tokens, const int32_t *targets, ds_train_step_info *info) {
    int k, n = tr ? tr->B * tr->T : 0;
    double sum = 0.0;
    ds_status st;
    if (!tr || !tokens || !targets) return ds__fail(DS_ERR_INVALID_ARG, "trainer_step: NULL argument");
    memset(tr->grads, 0, sizeof(float) * tr->n_params);
    tr->amax = 0.0f;
    for (k = 0; k < tr->tc.grad_accum; k++) {
        float l;
        tr->lora_mb = k;
        st = ds_trainer_grad(tr, tokens + (size_t)k * n, targets + (size_t)k * n, tr->B, tr->T, tr->scale / (float)tr->tc.grad_accum, &l);
        tr->lora_mb = 0;
        if (st != DS_OK) return st;
        sum += l;
    }
#if !defined(DS_NO_DEEPSEEK2)
    ds__dsk_tr_after_step(tr);
#endif
    return ds__tr_apply(tr, (float)(sum / tr->tc.grad_accum), info);
}

DS_API ds_status ds_trainer_step(ds_trainer *tr, ds_train_data *d, ds_train_step_info *info) {
    ds_status st;
    if (!tr || !d) return ds__fail(DS_ERR_INVALID_ARG, "trainer_step: NULL argument");
    if ((st = ds__tr_fill_batches(tr, d)) != DS_OK) return st;
    return ds_trainer_step_tokens(tr, tr->tok, tr->tgt, info);
}

/* ---- checkpoints and model export ---------------------------------------------------------
   Both are llama-architecture GGUF files with llama.cpp's key and tensor names. A checkpoint
   adds the AdamW moments (tensors "opt.m.<name>", "opt.v.<name>"), the training state
   (train.step, train.rng, train.cursor, loss-scaler state) and every ds_train_config field
   under train.cfg.*, so a run resumes exactly where it stopped. */
static ds_status ds__tr_model_kv(ds_gguf_writer *w, const ds_model_config *mc) {
    ds_status st = DS_OK;
    int l;
    for (l = 0; l < mc->n_layer; l++)   /* MLA / MoE models are deepseek2 files */
        if (mc->layers[l].attn == DS_ATTN_MLA || mc->layers[l].ffn == DS_FFN_MOE) return ds_model_config_write_deepseek2(mc, w);
#define DS__W(call) if (st == DS_OK) st = (call)
    DS__W(ds_gguf_writer_set_str(w, "general.architecture", "llama"));
    DS__W(ds_gguf_writer_set_u32(w, "llama.block_count", (uint32_t)mc->n_layer));
    DS__W(ds_gguf_writer_set_u32(w, "llama.context_length", (uint32_t)mc->n_ctx));
    DS__W(ds_gguf_writer_set_u32(w, "llama.embedding_length", (uint32_t)mc->n_embd));
    DS__W(ds_gguf_writer_set_u32(w, "llama.feed_forward_length", (uint32_t)mc->n_ff));
    DS__W(ds_gguf_writer_set_u32(w, "llama.attention.head_count", (uint32_t)mc->n_head));
    DS__W(ds_gguf_writer_set_u32(w, "llama.attention.head_count_kv", (uint32_t)mc->n_head_kv));
    DS__W(ds_gguf_writer_set_u32(w, "llama.attention.key_length", (uint32_t)mc->head_dim));
    DS__W(ds_gguf_writer_set_u32(w, "llama.attention.value_length", (uint32_t)mc->head_dim));
    DS__W(ds_gguf_writer_set_f32(w, "llama.rope.freq_base", mc->rope_base));
    DS__W(ds_gguf_writer_set_u32(w, "llama.rope.dimension_count", (uint32_t)mc->n_rot));
    DS__W(ds_gguf_writer_set_f32(w, "llama.attention.layer_norm_rms_epsilon", mc->norm_eps));
    DS__W(ds_gguf_writer_set_u32(w, "llama.vocab_size", (uint32_t)mc->n_vocab));
    DS__W(ds__sda_write_config(w, "llama", mc));
#undef DS__W
    return st;
}

static ds_status ds__tr_add_tensors(ds_gguf_writer *w, const ds_trainer *tr, const float *buf, const char *prefix) {
    int i;
    ds_status st;
    for (i = 0; i < tr->n_tensors; i++) {
        const ds__ttensor *t = &tr->tensors[i];
        char name[64];
        int64_t ne[3];
        int nd = t->rows == 1 ? 1 : 2;
        ne[0] = t->cols;
        ne[1] = t->rows;
        if (strstr(t->name, "_exps.")) {   /* MoE experts: (E, rows / E, cols) */
            ne[1] = t->rows / tr->mc.n_expert;
            ne[2] = tr->mc.n_expert;
            nd = 3;
        }
        snprintf(name, sizeof name, "%s%s", prefix, t->name);
        if ((st = ds_gguf_writer_add_tensor(w, name, DS_TYPE_F32, nd, ne, buf + t->off)) != DS_OK) return st;
    }
#if !defined(DS_NO_DEEPSEEK2)
    return ds__dsk_tr_add_bias(w, tr, prefix);
#else
    return DS_OK;
#endif
}

/* the train.cfg.* keys: the numeric fields of ds_train_config (the parser's table) */
static ds_status ds__tr_config_kv(ds_gguf_writer *w, const ds_train_config *tc) {
    size_t i;
    char key[64];
    ds_status st = ds_gguf_writer_set_u32(w, "train.cfg.precision", (uint32_t)tc->precision);
    for (i = 0; st == DS_OK && i < sizeof ds__cfg_keys / sizeof ds__cfg_keys[0]; i++) {
        const ds__cfg_key *k = &ds__cfg_keys[i];
        const char *p = (const char *)tc + k->off;
        if (!k->train) continue;
        snprintf(key, sizeof key, "train.cfg.%s", k->name);
        if (k->type == DS__K_INT) st = ds_gguf_writer_set_i32(w, key, *(const int32_t *)(const void *)p);
        else if (k->type == DS__K_U64) st = ds_gguf_writer_set_u64(w, key, *(const uint64_t *)(const void *)p);
        else st = ds_gguf_writer_set_f32(w, key, *(const float *)(const void *)p);
    }
    return st;
}

/* the tokenizer.* keys of g */
static ds_status ds__tr_tokenizer_kv(ds_gguf_writer *w, const ds_gguf *g) {
    int64_t i, n = ds_gguf_n_kv(g);
    for (i = 0; i < n; i++) {
        const ds_gguf_kv *kv = ds_gguf_kv_at(g, i);
        const uint8_t *val;
        size_t len;
        ds_status st;
        if (kv->key.len < 10 || memcmp(kv->key.ptr, "tokenizer.", 10)) continue;
        val = ds__gguf_kv_encoded(kv, &len);
        if ((st = ds__gguf_writer_put(w, kv->key.ptr, kv->key.len, kv->type, val, len)) != DS_OK) return st;
    }
    return DS_OK;
}

/* a tokenizer GGUF for a V-token model */
static ds_status ds__tr_check_tokenizer(const ds_gguf *g, int V) {
    int n = 0;
    if (ds_gguf_vocab_fingerprint(g, NULL, &n) != DS_OK) return ds__fail(DS_ERR_NOT_FOUND, "train: the tokenizer GGUF has no tokenizer.ggml.tokens");
    if (n != V) return ds__fail(DS_ERR_INVALID_ARG, "train: the tokenizer has %d tokens, the model's n_vocab is %d", n, V);
    return DS_OK;
}

DS_API ds_status ds_trainer_set_tokenizer(ds_trainer *tr, const ds_gguf *g) {
    ds_status st;
    if (!tr) return ds__fail(DS_ERR_INVALID_ARG, "set_tokenizer: NULL trainer");
    if (g && (st = ds__tr_check_tokenizer(g, tr->V)) != DS_OK) return st;
    tr->vocab = g;
    return DS_OK;
}

static ds_status ds__lora_ckpt_kv(ds_gguf_writer *w, const ds_trainer *tr);
static ds_status ds__lora_ckpt_check(const ds_trainer *tr, const ds_gguf *g, const char *path);

DS_API ds_status ds_trainer_save_checkpoint(ds_trainer *tr, const char *path) {
    ds_gguf_writer *w;
    ds_status st;
    if (!tr || !path) return ds__fail(DS_ERR_INVALID_ARG, "save_checkpoint: NULL argument");
    if (!ds__tr_finite(tr, tr->params) || !ds__tr_finite(tr, tr->m) || !ds__tr_finite(tr, tr->v))
        return ds__fail(DS_ERR_STATE, "save_checkpoint: %s: the weights or optimizer moments hold inf or NaN; not saved", path);
    if ((st = ds_gguf_writer_create(&w)) != DS_OK) return st;
    ds_gguf_writer_set_checksum(w, 1);
    st = tr->vocab ? ds__tr_tokenizer_kv(w, tr->vocab) : DS_OK;
    if (st == DS_OK) st = ds__tr_model_kv(w, &tr->mc);
    if (st == DS_OK) st = ds_gguf_writer_set_str(w, "general.type", "checkpoint");
    if (st == DS_OK) st = ds_gguf_writer_set_u32(w, "llama.tied_output", (uint32_t)tr->mc.tied_output);
    if (st == DS_OK) st = ds__tr_config_kv(w, &tr->tc);
    if (st == DS_OK && tr->base) st = ds__lora_ckpt_kv(w, tr);
    if (st == DS_OK) st = ds_gguf_writer_set_i32(w, "train.step", tr->step);
    if (st == DS_OK) st = ds_gguf_writer_set_i32(w, "train.adam_t", tr->adam_t);
    if (st == DS_OK) st = ds_gguf_writer_set_i32(w, "train.skipped_total", tr->skipped_total);
    if (st == DS_OK) st = ds_gguf_writer_set_i32(w, "train.clean_steps", tr->clean_steps);
    if (st == DS_OK) st = ds_gguf_writer_set_u64(w, "train.rng", tr->rng);
    if (st == DS_OK) st = ds_gguf_writer_set_u64(w, "train.cursor", tr->cursor);
    if (st == DS_OK) st = ds_gguf_writer_set_f32(w, "train.loss_scale", tr->scale);
    if (st == DS_OK) st = ds_gguf_writer_set_arr(w, "train.amax_hist", DS_GGUF_F32, tr->amax_hist, DS__SCALE_HIST);
    if (st == DS_OK) st = ds__tr_add_tensors(w, tr, tr->params, "");
    if (st == DS_OK) st = ds__tr_add_tensors(w, tr, tr->m, "opt.m.");
    if (st == DS_OK) st = ds__tr_add_tensors(w, tr, tr->v, "opt.v.");
    if (st == DS_OK) st = ds_gguf_writer_write(w, path);
    ds_gguf_writer_free(w);
    return st;
}

static ds_status ds__tr_get_u32(const ds_gguf *g, const char *key, int *out, const char *path) {
    uint32_t v;
    if (ds_gguf_get_u32(g, key, &v) != DS_OK || v > INT_MAX) return ds__fail(DS_ERR_FORMAT, "%s: missing or bad '%s'", path, key);
    *out = (int)v;
    return DS_OK;
}

static ds_status ds__tr_read_configs(const ds_gguf *g, const char *path, ds_model_config *mc, ds_train_config *tc) {
    ds_status st = DS_OK;
    uint32_t prec = 0;
    size_t i;
    memset(mc, 0, sizeof *mc);
#if !defined(DS_NO_DEEPSEEK2)
    if (ds__dsk_tr_read_model(g, path, mc, &st)) {   /* deepseek2 checkpoints (>>train:deepseek) */
        if (st != DS_OK) return st;
    } else
#endif
    {
        strcpy(mc->arch, "llama");
#define DS__R(key, field) if (st == DS_OK) st = ds__tr_get_u32(g, key, &mc->field, path)
        DS__R("llama.block_count", n_layer);
        DS__R("llama.context_length", n_ctx);
        DS__R("llama.embedding_length", n_embd);
        DS__R("llama.feed_forward_length", n_ff);
        DS__R("llama.attention.head_count", n_head);
        DS__R("llama.attention.head_count_kv", n_head_kv);
        DS__R("llama.attention.key_length", head_dim);
        DS__R("llama.rope.dimension_count", n_rot);
        DS__R("llama.vocab_size", n_vocab);
        DS__R("llama.tied_output", tied_output);
#undef DS__R
        if (st != DS_OK) return st;
        if (ds_gguf_get_f32(g, "llama.rope.freq_base", &mc->rope_base) != DS_OK || ds_gguf_get_f32(g, "llama.attention.layer_norm_rms_epsilon", &mc->norm_eps) != DS_OK)
            return ds__fail(DS_ERR_FORMAT, "%s: missing rope or norm settings", path);
    }
    if (!tc) return DS_OK;
    memset(tc, 0, sizeof *tc);
    if (ds_gguf_get_u32(g, "train.cfg.precision", &prec) != DS_OK || prec > DS_PREC_FP8) return ds__fail(DS_ERR_FORMAT, "%s: not a training checkpoint (no train.cfg.precision)", path);
    tc->precision = (ds_precision)prec;
    for (i = 0; i < sizeof ds__cfg_keys / sizeof ds__cfg_keys[0]; i++) {
        const ds__cfg_key *k = &ds__cfg_keys[i];
        char key[64];
        char *p = (char *)tc + k->off;
        int32_t iv;
        if (!k->train) continue;
        snprintf(key, sizeof key, "train.cfg.%s", k->name);
        if (k->type == DS__K_INT) {
            if ((st = ds_gguf_get_i32(g, key, &iv)) == DS_OK) memcpy(p, &iv, sizeof iv);
        } else if (k->type == DS__K_U64) {
            st = ds_gguf_get_u64(g, key, (uint64_t *)(void *)p);
        } else {
            st = ds_gguf_get_f32(g, key, (float *)(void *)p);
        }
        if (st != DS_OK) return ds__fail(DS_ERR_FORMAT, "%s: missing or bad '%s'", path, key);
    }
    return DS_OK;
}

DS_API ds_status ds_checkpoint_read_config(const char *path, ds_model_config *mc, ds_train_config *tc) {
    ds_gguf *g;
    ds_status st;
    if (!path || !mc) return ds__fail(DS_ERR_INVALID_ARG, "checkpoint_read_config: NULL argument");
    if ((st = ds_gguf_open(path, &g)) != DS_OK) return st;
    st = ds__tr_read_configs(g, path, mc, tc);
    ds_gguf_free(g);
    return st;
}

static ds_status ds__tr_load_tensors(const ds_trainer *tr, const ds_gguf *g, float *buf, const char *prefix, const char *path) {
    int i;
    for (i = 0; i < tr->n_tensors; i++) {
        const ds__ttensor *t = &tr->tensors[i];
        const ds_gguf_tensor *gt;
        char name[64];
        snprintf(name, sizeof name, "%s%s", prefix, t->name);
        gt = ds_gguf_find_tensor(g, name);
        if (!gt) return ds__fail(DS_ERR_NOT_FOUND, "%s: no tensor '%s'", path, name);
        if (gt->type != DS_TYPE_F32 || gt->ne[0] != t->cols || gt->ne[1] * gt->ne[2] != t->rows || gt->nbytes != sizeof(float) * (size_t)t->rows * t->cols)
            return ds__fail(DS_ERR_FORMAT, "%s: tensor '%s' is %s [%lld, %lld], expected F32 [%d, %d]", path, name, ds_type_name(gt->type), (long long)gt->ne[0], (long long)gt->ne[1], t->cols, t->rows);
        memcpy(buf + t->off, gt->data, (size_t)gt->nbytes);
    }
    return DS_OK;
}

static ds_status ds__tr_load_state(ds_trainer *tr, const ds_gguf *g, const char *path) {
    ds_gguf_type et;
    uint64_t n;
    const void *data;
    if (ds_gguf_get_i32(g, "train.step", &tr->step) != DS_OK || ds_gguf_get_i32(g, "train.adam_t", &tr->adam_t) != DS_OK ||
        ds_gguf_get_i32(g, "train.skipped_total", &tr->skipped_total) != DS_OK || ds_gguf_get_i32(g, "train.clean_steps", &tr->clean_steps) != DS_OK ||
        ds_gguf_get_u64(g, "train.rng", &tr->rng) != DS_OK || ds_gguf_get_u64(g, "train.cursor", &tr->cursor) != DS_OK ||
        ds_gguf_get_f32(g, "train.loss_scale", &tr->scale) != DS_OK)
        return ds__fail(DS_ERR_FORMAT, "%s: training state keys missing", path);
    if (ds_gguf_get_arr(g, "train.amax_hist", &et, &n, &data) != DS_OK || et != DS_GGUF_F32 || n != DS__SCALE_HIST)
        return ds__fail(DS_ERR_FORMAT, "%s: bad train.amax_hist", path);
    memcpy(tr->amax_hist, data, sizeof tr->amax_hist);
    if (tr->step < 0 || tr->adam_t < 0 || !(tr->scale > 0.0f)) return ds__fail(DS_ERR_FORMAT, "%s: impossible training state", path);
    return DS_OK;
}

DS_API ds_status ds_trainer_load_checkpoint(ds_trainer *tr, const char *path) {
    ds_gguf *g;
    ds_model_config mc;
    ds_status st;
    if (!tr || !path) return ds__fail(DS_ERR_INVALID_ARG, "load_checkpoint: NULL argument");
    if ((st = ds_gguf_open(path, &g)) != DS_OK) return st;
    if ((st = ds_gguf_verify_checksum(g, NULL)) != DS_OK) {
        char why[400];
        snprintf(why, sizeof why, "%.399s", ds_last_error());
        ds_gguf_free(g);
        return ds__fail(st, "%s: %s", path, why);
    }
    st = ds__tr_read_configs(g, path, &mc, NULL);
    if (st == DS_OK && (ds_model_config_check(&mc) != DS_OK || mc.n_layer != tr->mc.n_layer || mc.n_embd != tr->mc.n_embd ||
                        mc.n_vocab != tr->mc.n_vocab || mc.n_head != tr->mc.n_head || mc.n_head_kv != tr->mc.n_head_kv ||
                        mc.n_ff != tr->mc.n_ff || mc.head_dim != tr->mc.head_dim || mc.tied_output != tr->mc.tied_output))
        st = ds__fail(DS_ERR_INVALID_ARG, "%s: the checkpoint's model shape differs from the trainer's", path);
    if (st == DS_OK) st = ds__lora_ckpt_check(tr, g, path);
    if (st == DS_OK) st = ds__tr_load_state(tr, g, path);
    if (st == DS_OK) st = ds__tr_load_tensors(tr, g, tr->params, "", path);
#if !defined(DS_NO_DEEPSEEK2)
    if (st == DS_OK) st = ds__dsk_tr_load_bias(tr, g, path);
#endif
    if (st == DS_OK) st = ds__tr_load_tensors(tr, g, tr->m, "opt.m.", path);
    if (st == DS_OK) st = ds__tr_load_tensors(tr, g, tr->v, "opt.v.", path);
    ds_gguf_free(g);
    return st;
}

/* GPT-2's byte-to-character map, so a byte vocabulary is a valid "gpt2" tokenizer: printable
   Latin-1 bytes stand for themselves, the others for U+0100 onwards. Writes UTF-8. */
static void ds__tr_byte_token(int b, char out[4]) {
    int cp = b, n = 0, i;
    if (!((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255))) {
        for (i = 0; i < b; i++)
            if (!((i >= 33 && i <= 126) || (i >= 161 && i <= 172) || (i >= 174 && i <= 255))) n++;
        cp = 256 + n;
    }
    if (cp < 0x80) {
        out[0] = (char)cp;
        out[1] = 0;
    } else {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        out[2] = 0;
    }
}

static ds_status ds__tr_byte_vocab_kv(ds_gguf_writer *w, int V) {
    char (*names)[24] = DS__CAST(char (*)[24], ds__calloc((size_t)V, 24));
    const char **ptrs = DS__CAST(const char **, ds__calloc((size_t)V, sizeof(char *)));
    int32_t *types = DS__CAST(int32_t *, ds__calloc((size_t)V, sizeof(int32_t)));
    ds_status st = DS_OK;
    int i;
    if (!names || !ptrs || !types) st = ds__fail(DS_ERR_NO_MEMORY, "train: out of memory");
    for (i = 0; st == DS_OK && i < V; i++) {
        if (i < 256) {
            ds__tr_byte_token(i, names[i]);
            types[i] = 1;   /* normal */
        } else {
            snprintf(names[i], 24, "<|extra_%d|>", i - 256);
            types[i] = 3;   /* control */
        }
        ptrs[i] = names[i];
    }
    if (st == DS_OK) st = ds_gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
    if (st == DS_OK) st = ds_gguf_writer_set_str(w, "tokenizer.ggml.pre", "gpt-2");
    if (st == DS_OK) st = ds_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", ptrs, (uint64_t)V);
    if (st == DS_OK) st = ds_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", DS_GGUF_I32, types, (uint64_t)V);
    if (st == DS_OK) st = ds_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", ptrs, 0);
    ds_free(names);
    ds_free(ptrs);
    ds_free(types);
    return st;
}

DS_API ds_status ds_trainer_save_model(ds_trainer *tr, const char *path, const ds_gguf *tokenizer) {
    ds_gguf_writer *w;
    ds_status st;
    if (!tr || !path) return ds__fail(DS_ERR_INVALID_ARG, "save_model: NULL argument");
    if (tr->base) return ds__fail(DS_ERR_STATE, "save_model: %s: a LoRA trainer holds an adapter, not a model (ds_trainer_save_lora)", path);
    if (!tokenizer && tr->V < 256 && !tr->vocab) return ds__fail(DS_ERR_INVALID_ARG, "save_model: a %d-token model needs a tokenizer", tr->V);
    if (tokenizer && (st = ds__tr_check_tokenizer(tokenizer, tr->V)) != DS_OK) return st;
    if (!ds__tr_finite(tr, tr->params)) return ds__fail(DS_ERR_STATE, "save_model: %s: the weights hold inf or NaN; not saved", path);
    if ((st = ds_gguf_writer_create(&w)) != DS_OK) return st;
    ds_gguf_writer_set_checksum(w, 1);
    if (tokenizer) st = ds_gguf_writer_copy_kv(w, tokenizer);
    else if (tr->vocab) st = ds__tr_tokenizer_kv(w, tr->vocab);   /* perhaps a checkpoint: its tokenizer keys alone */
    else st = ds__tr_byte_vocab_kv(w, tr->V);
    if (st == DS_OK) st = ds__tr_model_kv(w, &tr->mc);
    if (st == DS_OK) st = ds_gguf_writer_set_str(w, "general.type", "model");
    if (st == DS_OK) st = ds_gguf_writer_set_str(w, "general.name", "deepseek.h trained llama");
    if (st == DS_OK) st = ds__tr_add_tensors(w, tr, tr->params, "");
    if (st == DS_OK) st = ds_gguf_writer_write(w, path);
    ds_gguf_writer_free(w);
    return st;
}

// >>train:deepseek
/* ---- MLA and MoE layers for training ---------------------------------------------------------
   Training runs MLA in its naive form: the latent is decompressed into per-head keys and values
   and attended as multi-head attention, which is the form the gradients flow through (the
   absorbed form is an inference rewrite of the same function). Shapes as in >>deepseek; N = B*T
   rows, parameters are offsets into the trainer's parameter and gradient buffers. */
#if !defined(DS_NO_DEEPSEEK2)


static size_t ds__mla_tacts_floats(const ds_model_config *c, int B, int T) {
    size_t N = (size_t)B * T, H = (size_t)c->n_head, R = (size_t)c->kv_lora_rank;
    return 2 * ds__tr_round16(N * c->q_lora_rank) + 2 * ds__tr_round16(N) + ds__tr_round16(N * H * ds__mla_dq(c)) +
           ds__tr_round16(N * (R + c->qk_rope_dim)) + 2 * ds__tr_round16(N * R) + ds__tr_round16(N * H * (c->qk_nope_dim + c->v_head_dim)) +
           ds__tr_round16((size_t)B * H * T * T) + ds__tr_round16(N * H * c->v_head_dim);
}

static void ds__mla_tacts_carve(ds__mla_tacts *a, float **p, const ds_model_config *c, int B, int T) {
    size_t N = (size_t)B * T, H = (size_t)c->n_head, R = (size_t)c->kv_lora_rank;
    a->qa = ds__tr_take(p, N * c->q_lora_rank);
    a->qan = ds__tr_take(p, N * c->q_lora_rank);
    a->rstd_q = ds__tr_take(p, N);
    a->q = ds__tr_take(p, N * H * ds__mla_dq(c));
    a->kva = ds__tr_take(p, N * (R + c->qk_rope_dim));
    a->lat = ds__tr_take(p, N * R);
    a->c = ds__tr_take(p, N * R);
    a->rstd_c = ds__tr_take(p, N);
    a->kv = ds__tr_take(p, N * H * (c->qk_nope_dim + c->v_head_dim));
    a->probs = ds__tr_take(p, (size_t)B * H * T * T);
    a->att = ds__tr_take(p, N * H * c->v_head_dim);
}

typedef struct ds__mla_attn_args {
    const ds_model_config *c;
    const ds__mla_tacts *a;
    ds__mla_tacts *d;   /* backward: gradients (q, kva, kv, att) */
    const ds__ops *o;
    int T;
} ds__mla_attn_args;

/* the shapes one sequence's MLA attention works with */
typedef struct ds__mla_dims {
    int H, Dn, Dr, Dv, Dq, R, T, KV;   /* heads; nope, rope, value and query head sizes; latent rank; tokens; k_nope + v */
    float scale;
} ds__mla_dims;
static ds__mla_dims ds__mla_attn_dims(const ds_model_config *c, int T) {
    ds__mla_dims d;
    d.H = c->n_head;
    d.Dn = c->qk_nope_dim;
    d.Dr = c->qk_rope_dim;
    d.Dv = c->v_head_dim;
    d.Dq = d.Dn + d.Dr;
    d.R = c->kv_lora_rank;
    d.T = T;
    d.KV = d.Dn + d.Dv;
    d.scale = 1.0f / sqrtf((float)d.Dq);
    return d;
}

/* scores of one causal row: p[j] = softmax_j(scale * (q_nope . k_nope_j + q_pe . k_pe_j)), j <= i */
static void ds__mla_attn_fwd_seq(void *ctx, int b, int n) {
    const ds__mla_attn_args *g = DS__CAST(const ds__mla_attn_args *, ctx);
    const ds__mla_dims dim = ds__mla_attn_dims(g->c, g->T);
    int h, i, j;
    (void)n;
    for (h = 0; h < dim.H; h++)
        for (i = 0; i < dim.T; i++) {
            size_t ri = (size_t)b * dim.T + i;
            const float *q = g->a->q + (ri * dim.H + h) * dim.Dq;
            float *p = g->a->probs + (((size_t)b * dim.H + h) * dim.T + i) * dim.T, *o = g->a->att + (ri * dim.H + h) * dim.Dv;
            for (j = 0; j <= i; j++) {
                size_t rj = (size_t)b * dim.T + j;
                p[j] = dim.scale * (g->o->dot(q, g->a->kv + (rj * dim.H + h) * dim.KV, dim.Dn) + g->o->dot(q + dim.Dn, g->a->kva + rj * (dim.R + dim.Dr) + dim.R, dim.Dr));
            }
            g->o->softmax(p, i + 1);
            memset(o, 0, (size_t)dim.Dv * sizeof *o);
            for (j = 0; j <= i; j++) g->o->axpy(o, p[j], g->a->kv + (((size_t)b * dim.T + j) * dim.H + h) * dim.KV + dim.Dn, dim.Dv);
        }
}

/* d scores = p * (dp - sum p dp); gradients flow to q, k_nope, v and the shared k_pe */
static void ds__mla_attn_bwd_seq(void *ctx, int b, int n) {
    const ds__mla_attn_args *g = DS__CAST(const ds__mla_attn_args *, ctx);
    const ds__mla_dims dim = ds__mla_attn_dims(g->c, g->T);
    int h, i, j;
    (void)n;
    for (h = 0; h < dim.H; h++)
        for (i = 0; i < dim.T; i++) {
            size_t ri = (size_t)b * dim.T + i;
            const float *q = g->a->q + (ri * dim.H + h) * dim.Dq, *p = g->a->probs + (((size_t)b * dim.H + h) * dim.T + i) * dim.T;
            const float *dout = g->d->att + (ri * dim.H + h) * dim.Dv;
            float *dq = g->d->q + (ri * dim.H + h) * dim.Dq, dot = 0.0f;
            for (j = 0; j <= i; j++) dot += p[j] * g->o->dot(dout, g->a->kv + (((size_t)b * dim.T + j) * dim.H + h) * dim.KV + dim.Dn, dim.Dv);
            for (j = 0; j <= i; j++) {
                size_t rj = (size_t)b * dim.T + j;
                const float *kj = g->a->kv + (rj * dim.H + h) * dim.KV;
                float *dkj = g->d->kv + (rj * dim.H + h) * dim.KV;
                float ds = p[j] * (g->o->dot(dout, kj + dim.Dn, dim.Dv) - dot) * dim.scale;
                g->o->axpy(dkj + dim.Dn, p[j], dout, dim.Dv);
                g->o->axpy(dq, ds, kj, dim.Dn);
                g->o->axpy(dq + dim.Dn, ds, g->a->kva + rj * (dim.R + dim.Dr) + dim.R, dim.Dr);
                g->o->axpy(dkj, ds, q, dim.Dn);
                g->o->axpy(g->d->kva + rj * (dim.R + dim.Dr) + dim.R, ds, q + dim.Dn, dim.Dr);
            }
        }
}

/* y (N, C) (+= when acc) = MLA of the normed input x (N, C); cs: RoPE table (T, Dr) */
static void ds__mla_train_forward(ds_trainer *tr, const ds_model_config *c, const ds__mla_tparams *P, ds__mla_tacts *a, const float *x, float *y, int acc, const float *cs, int B, int T) {
    const float *W = tr->params;
    int N = B * T, C = c->n_embd, H = c->n_head, Dq = ds__mla_dq(c), Rq = c->q_lora_rank, R = c->kv_lora_rank, Dr = c->qk_rope_dim;
    int Dn = c->qk_nope_dim, Dv = c->v_head_dim, i;
    ds__mla_attn_args g;
    if (Rq) {
        ds__linear_forward(tr, a->qa, x, W + P->wq_a, N, Rq, C, 0);
        ds__rmsnorm_forward(tr->pool, a->qan, a->rstd_q, a->qa, W + P->q_a_norm, N, Rq, c->norm_eps);
        ds__linear_forward(tr, a->q, a->qan, W + P->wq_b, N, H * Dq, Rq, 0);
    } else {
        ds__linear_forward(tr, a->q, x, W + P->wq, N, H * Dq, C, 0);
    }
    ds__rope_apply(a->q + Dn, cs, N, T, H, Dq, Dr, 1.0f);
    ds__linear_forward(tr, a->kva, x, W + P->wkv_a, N, R + Dr, C, 0);
    ds__rope_apply(a->kva + R, cs, N, T, 1, R + Dr, Dr, 1.0f);
    for (i = 0; i < N; i++) memcpy(a->lat + (size_t)i * R, a->kva + (size_t)i * (R + Dr), (size_t)R * sizeof(float));
    ds__rmsnorm_forward(tr->pool, a->c, a->rstd_c, a->lat, W + P->kv_a_norm, N, R, c->norm_eps);
    ds__linear_forward(tr, a->kv, a->c, W + P->wkv_b, N, H * (Dn + Dv), R, 0);
    g.c = c;
    g.o = &tr->ops;
    g.a = a;
    g.d = NULL;
    g.T = T;
    ds_pool_run(tr->pool, ds__mla_attn_fwd_seq, &g, B);
    ds__linear_forward(tr, y, a->att, W + P->wo, N, C, H * Dv, acc);
}

/* dx (N, C) += gradient of the input from dy (N, C); parameter gradients are added to tr->grads.
   d: scratch of the saved values' shape (its contents are overwritten). */
static void ds__mla_train_backward(ds_trainer *tr, const ds_model_config *c, const ds__mla_tparams *P, const ds__mla_tacts *a, ds__mla_tacts *d, const float *x, const float *dy, float *dx, const float *cs, int B, int T) {
    const float *W = tr->params;
    float *G = tr->grads;
    int N = B * T, C = c->n_embd, H = c->n_head, Dq = ds__mla_dq(c), Rq = c->q_lora_rank, R = c->kv_lora_rank, Dr = c->qk_rope_dim;
    int Dn = c->qk_nope_dim, Dv = c->v_head_dim, i;
    ds__mla_attn_args g;
    ds__linear_backward(tr, d->att, 0, G + P->wo, dy, a->att, W + P->wo, N, C, H * Dv);
    memset(d->q, 0, sizeof(float) * (size_t)N * H * Dq);
    memset(d->kv, 0, sizeof(float) * (size_t)N * H * (Dn + Dv));
    memset(d->kva, 0, sizeof(float) * (size_t)N * (R + Dr));
    g.c = c;
    g.o = &tr->ops;
    g.a = a;
    g.d = d;
    g.T = T;
    ds_pool_run(tr->pool, ds__mla_attn_bwd_seq, &g, B);
    ds__linear_backward(tr, d->c, 0, G + P->wkv_b, d->kv, a->c, W + P->wkv_b, N, H * (Dn + Dv), R);
    memset(d->lat, 0, sizeof(float) * (size_t)N * R);
    ds__rmsnorm_backward(tr->pool, d->lat, G + P->kv_a_norm, d->c, a->lat, W + P->kv_a_norm, a->rstd_c, N, R);
    for (i = 0; i < N; i++) memcpy(d->kva + (size_t)i * (R + Dr), d->lat + (size_t)i * R, (size_t)R * sizeof(float));
    ds__rope_apply(d->kva + R, cs, N, T, 1, R + Dr, Dr, -1.0f);
    ds__linear_backward(tr, dx, 1, G + P->wkv_a, d->kva, x, W + P->wkv_a, N, R + Dr, C);
    ds__rope_apply(d->q + Dn, cs, N, T, H, Dq, Dr, -1.0f);
    if (Rq) {
        ds__linear_backward(tr, d->qan, 0, G + P->wq_b, d->q, a->qan, W + P->wq_b, N, H * Dq, Rq);
        memset(d->qa, 0, sizeof(float) * (size_t)N * Rq);
        ds__rmsnorm_backward(tr->pool, d->qa, G + P->q_a_norm, d->qan, a->qa, W + P->q_a_norm, a->rstd_q, N, Rq);
        ds__linear_backward(tr, dx, 1, G + P->wq_a, d->qa, x, W + P->wq_a, N, Rq, C);
    } else {
        ds__linear_backward(tr, dx, 1, G + P->wq, d->q, x, W + P->wq, N, H * Dq, C);
    }
}

/* ---- MoE for training ------------------------------------------------------------------------
   Routing as in inference (ds__moe_route); the chosen experts' weights are differentiable
   functions of the router probabilities, so the router learns through them. The selection
   bias is not a parameter: ds__moe_bias_update moves it against each expert's load after a
   step (auxiliary-loss-free balancing). An optional sequence-level balance loss
   alpha * sum_e f_e * P_e (f_e: the expert's share of a sequence's choices times E / K, P_e: its
   mean normalised affinity) adds its gradient to the router. */


static size_t ds__moe_tacts_floats(const ds_model_config *c, int B, int T) {
    size_t N = (size_t)B * T, K = (size_t)c->n_expert_used, E = (size_t)c->n_expert, F = (size_t)c->n_ff_expert, SF = F * c->n_expert_shared;
    return ds__tr_round16(N * E) + 3 * ds__tr_round16(N * K) + ds__tr_round16(E + 1) + 2 * ds__tr_round16(N * K * c->n_embd) +
           3 * ds__tr_round16(N * K * F) + 3 * ds__tr_round16(N * SF) + ds__tr_round16(2 * E + 2);
}

static void ds__moe_tacts_carve(ds__moe_tacts *a, float **p, const ds_model_config *c, int B, int T) {
    size_t N = (size_t)B * T, K = (size_t)c->n_expert_used, E = (size_t)c->n_expert, F = (size_t)c->n_ff_expert, SF = F * c->n_expert_shared;
    a->probs = ds__tr_take(p, N * E);
    a->w = ds__tr_take(p, N * K);
    a->gi = DS__CAST(int *, (void *)ds__tr_take(p, N * K));
    a->order = DS__CAST(int *, (void *)ds__tr_take(p, N * K));
    a->count = DS__CAST(int *, (void *)ds__tr_take(p, E + 1));
    a->xg = ds__tr_take(p, N * K * c->n_embd);
    a->y = ds__tr_take(p, N * K * c->n_embd);
    a->g = ds__tr_take(p, N * K * F);
    a->u = ds__tr_take(p, N * K * F);
    a->h = ds__tr_take(p, N * K * F);
    a->sg = ds__tr_take(p, N * SF);
    a->su = ds__tr_take(p, N * SF);
    a->sh = ds__tr_take(p, N * SF);
    a->sel = ds__tr_take(p, 2 * E + 2);
}

/* y (N, C) (+= when acc) = routed + shared experts of x (N, C); bias: the selection bias or NULL */
static void ds__moe_train_forward(ds_trainer *tr, const ds_model_config *c, const ds__moe_tparams *P, const float *bias, ds__moe_tacts *a, const float *x, float *y, int acc, int N) {
    const float *W = tr->params;
    int E = c->n_expert, K = c->n_expert_used, C = c->n_embd, F = c->n_ff_expert, SF = F * c->n_expert_shared, i, e;
    ds__linear_forward(tr, a->probs, x, W + P->gate_inp, N, E, C, 0);
    for (i = 0; i < N; i++) ds__moe_route(&tr->ops, c, bias, a->probs + (size_t)i * E, a->gi + (size_t)i * K, a->w + (size_t)i * K, a->sel);
    memset(a->count, 0, (size_t)(E + 1) * sizeof *a->count);
    for (i = 0; i < N * K; i++) a->count[a->gi[i] + 1]++;
    for (e = 0; e < E; e++) a->count[e + 1] += a->count[e];
    for (i = 0; i < N * K; i++) a->order[a->count[a->gi[i]]++] = i;
    for (e = E; e > 0; e--) a->count[e] = a->count[e - 1];
    a->count[0] = 0;
    for (i = 0; i < N * K; i++) memcpy(a->xg + (size_t)i * C, x + (size_t)(a->order[i] / K) * C, (size_t)C * sizeof(float));
    for (e = 0; e < E; e++) {
        int r0 = a->count[e], n = a->count[e + 1] - r0;
        if (!n) continue;
        ds__linear_forward(tr, a->g + (size_t)r0 * F, a->xg + (size_t)r0 * C, W + P->gate_exps + (size_t)e * F * C, n, F, C, 0);
        ds__linear_forward(tr, a->u + (size_t)r0 * F, a->xg + (size_t)r0 * C, W + P->up_exps + (size_t)e * F * C, n, F, C, 0);
        ds__swiglu_forward(tr->pool, a->h + (size_t)r0 * F, a->g + (size_t)r0 * F, a->u + (size_t)r0 * F, (size_t)n * F);
        ds__linear_forward(tr, a->y + (size_t)r0 * C, a->h + (size_t)r0 * F, W + P->down_exps + (size_t)e * C * F, n, C, F, 0);
    }
    if (SF) {
        ds__linear_forward(tr, a->sg, x, W + P->gate_sh, N, SF, C, 0);
        ds__linear_forward(tr, a->su, x, W + P->up_sh, N, SF, C, 0);
        ds__swiglu_forward(tr->pool, a->sh, a->sg, a->su, (size_t)N * SF);
        ds__linear_forward(tr, y, a->sh, W + P->down_sh, N, C, SF, acc);
    } else if (!acc) {
        memset(y, 0, sizeof(float) * (size_t)N * C);
    }
    for (i = 0; i < N * K; i++) {
        int slot = a->order[i];
        tr->ops.axpy(y + (size_t)(slot / K) * C, a->w[slot], a->y + (size_t)i * C, C);
    }
}

/* dp (E) += gradient of the sequence balance loss for one token's probabilities p (E), given
   the sequence's f (E) and T; softmax probabilities are already normalised, sigmoid ones are
   normalised over the experts first. Returns the token's share of the loss. */
static float ds__moe_balance_grad(const ds_model_config *c, const float *p, const float *f, int T, float alpha, float *dp) {
    int E = c->n_expert, e;
    float sum = 0.0f, loss = 0.0f, dot = 0.0f;
    for (e = 0; e < E; e++) sum += p[e];
    if (c->gating != DS_GATING_SIGMOID) sum = 1.0f;
    for (e = 0; e < E; e++) {
        loss += alpha * f[e] * p[e] / sum / (float)T;
        dot += alpha * f[e] / (float)T * p[e] / sum;
    }
    for (e = 0; e < E; e++) dp[e] += c->gating == DS_GATING_SIGMOID ? (alpha * f[e] / (float)T - dot) / sum : alpha * f[e] / (float)T;
    return loss;
}

/* dx (N, C) += input gradient from dy (N, C); parameter gradients added to tr->grads.
   d: scratch of the saved values' shape. alpha > 0 adds the sequence balance loss over
   sequences of T tokens; returns that loss (mean over sequences). */
static float ds__moe_train_backward(ds_trainer *tr, const ds_model_config *c, const ds__moe_tparams *P, const ds__moe_tacts *a, ds__moe_tacts *d, const float *x, const float *dy, float *dx, int N, int T, float alpha) {
    const float *W = tr->params;
    float *G = tr->grads, scale = c->routed_scale > 0.0f ? c->routed_scale : 1.0f, bal = 0.0f;
    int E = c->n_expert, K = c->n_expert_used, C = c->n_embd, F = c->n_ff_expert, SF = F * c->n_expert_shared, i, e, k;
    float *f = d->sel;
    /* d->y: gradient of each expert output row (weighted); d->w: of the routing weights */
    for (i = 0; i < N * K; i++) {
        int slot = a->order[i];
        const float *g = dy + (size_t)(slot / K) * C;
        d->w[slot] = tr->ops.dot(g, a->y + (size_t)i * C, C);
        memset(d->y + (size_t)i * C, 0, (size_t)C * sizeof(float));
        tr->ops.axpy(d->y + (size_t)i * C, a->w[slot], g, C);
    }
    memset(d->xg, 0, sizeof(float) * (size_t)N * K * C);
    for (e = 0; e < E; e++) {
        int r0 = a->count[e], n = a->count[e + 1] - r0;
        if (!n) continue;
        ds__linear_backward(tr, d->h + (size_t)r0 * F, 0, G + P->down_exps + (size_t)e * C * F, d->y + (size_t)r0 * C, a->h + (size_t)r0 * F, W + P->down_exps + (size_t)e * C * F, n, C, F);
        ds__swiglu_backward(tr->pool, d->g + (size_t)r0 * F, d->u + (size_t)r0 * F, d->h + (size_t)r0 * F, a->g + (size_t)r0 * F, a->u + (size_t)r0 * F, (size_t)n * F);
        ds__linear_backward(tr, d->xg + (size_t)r0 * C, 0, G + P->gate_exps + (size_t)e * F * C, d->g + (size_t)r0 * F, a->xg + (size_t)r0 * C, W + P->gate_exps + (size_t)e * F * C, n, F, C);
        ds__linear_backward(tr, d->xg + (size_t)r0 * C, 1, G + P->up_exps + (size_t)e * F * C, d->u + (size_t)r0 * F, a->xg + (size_t)r0 * C, W + P->up_exps + (size_t)e * F * C, n, F, C);
    }
    for (i = 0; i < N * K; i++) tr->ops.axpy(dx + (size_t)(a->order[i] / K) * C, 1.0f, d->xg + (size_t)i * C, C);
    if (SF) {
        ds__linear_backward(tr, d->sh, 0, G + P->down_sh, dy, a->sh, W + P->down_sh, N, C, SF);
        ds__swiglu_backward(tr->pool, d->sg, d->su, d->sh, a->sg, a->su, (size_t)N * SF);
        ds__linear_backward(tr, dx, 1, G + P->gate_sh, d->sg, x, W + P->gate_sh, N, SF, C);
        ds__linear_backward(tr, dx, 1, G + P->up_sh, d->su, x, W + P->up_sh, N, SF, C);
    }
    /* routing weights w_k = scale * p_k (/ S, S = sum of the chosen p) -> probabilities -> logits */
    memset(d->probs, 0, sizeof(float) * (size_t)N * E);
    for (i = 0; i < N; i++) {
        const float *p = a->probs + (size_t)i * E, *dw = d->w + (size_t)i * K;
        const int *gi = a->gi + (size_t)i * K;
        float *dp = d->probs + (size_t)i * E, S = 0.0f, dot = 0.0f;
        for (k = 0; k < K; k++) S += p[gi[k]];
        for (k = 0; k < K; k++) dot += dw[k] * p[gi[k]];
        for (k = 0; k < K; k++) dp[gi[k]] += c->norm_topk ? scale * (dw[k] / S - dot / (S * S)) : scale * dw[k];
    }
    if (alpha > 0.0f) {
        int b, nb = N / T;
        for (b = 0; b < nb; b++) {
            memset(f, 0, (size_t)E * sizeof *f);
            for (i = b * T; i < (b + 1) * T; i++)
                for (k = 0; k < K; k++) f[a->gi[(size_t)i * K + k]] += (float)E / ((float)K * T);
            /* the mean over sequences: each sequence's loss weighs 1 / nb */
            for (i = b * T; i < (b + 1) * T; i++) bal += ds__moe_balance_grad(c, a->probs + (size_t)i * E, f, T, alpha / (float)nb, d->probs + (size_t)i * E);
        }
    }
    for (i = 0; i < N; i++) {
        const float *p = a->probs + (size_t)i * E;
        float *dl = d->probs + (size_t)i * E, dot = 0.0f;
        if (c->gating == DS_GATING_SIGMOID) {
            for (e = 0; e < E; e++) dl[e] *= p[e] * (1.0f - p[e]);
            continue;
        }
        for (e = 0; e < E; e++) dot += p[e] * dl[e];
        for (e = 0; e < E; e++) dl[e] = p[e] * (dl[e] - dot);
    }
    ds__linear_backward(tr, dx, 1, G + P->gate_inp, d->probs, x, W + P->gate_inp, N, E, C);
    return bal;
}

/* Auxiliary-loss-free balancing: after a step, each expert's selection bias moves by rate
   toward balance: up when it took fewer than the mean of the choices (load, E counts), down
   when more. */
static void ds__moe_bias_update(const double *load, float *bias, int E, float rate) {
    int e;
    double mean = 0.0;
    for (e = 0; e < E; e++) mean += load[e] / E;
    for (e = 0; e < E; e++) bias[e] += load[e] < mean ? rate : load[e] > mean ? -rate : 0.0f;
}

/* ---- the trainer's MLA and MoE layers --------------------------------------------------------- */
static int ds__dsk_tr_has(const ds_trainer *tr, int moe) {
    int l;
    for (l = 0; l < tr->L; l++)
        if (moe ? tr->mc.layers[l].ffn == DS_FFN_MOE : tr->mc.layers[l].attn == DS_ATTN_MLA) return 1;
    return 0;
}

static size_t ds__dsk_tr_layer_floats(const ds_trainer *tr) {
    return (ds__dsk_tr_has(tr, 0) ? ds__mla_tacts_floats(&tr->mc, tr->B, tr->T) : 0) + (ds__dsk_tr_has(tr, 1) ? ds__moe_tacts_floats(&tr->mc, tr->B, tr->T) : 0);
}

static void ds__dsk_tr_carve(struct ds__tacts *a, float **p, const ds_trainer *tr) {
    if (ds__dsk_tr_has(tr, 0)) ds__mla_tacts_carve(&a->mla, p, &tr->mc, tr->B, tr->T);
    if (ds__dsk_tr_has(tr, 1)) ds__moe_tacts_carve(&a->moe, p, &tr->mc, tr->B, tr->T);
}

/* gradient scratch, the MLA RoPE table, selection biases and load counters */
static ds_status ds__dsk_tr_alloc(ds_trainer *tr) {
    ds__dsk_train *d = &tr->dsk;
    const ds_model_config *c = &tr->mc;
    size_t E = (size_t)DS__MAX(c->n_expert, 1), L = (size_t)tr->L, n = ds__dsk_tr_layer_floats(tr) + ds__tr_round16((size_t)tr->T * c->qk_rope_dim) + ds__tr_round16(L * E) + 4 * L * E + 16;
    float *p;
    if (!ds__dsk_tr_has(tr, 0) && !ds__dsk_tr_has(tr, 1)) return DS_OK;
    if (tr->tc.precision == DS_PREC_FP16 || tr->tc.precision == DS_PREC_FP8) return ds__fail(DS_ERR_UNSUPPORTED, "train: MLA and MoE layers train in f32 or bf16");
    d->mem = ds__calloc(n, sizeof(float));
    if (!d->mem) return ds__fail(DS_ERR_NO_MEMORY, "train: out of memory for the MLA / MoE buffers");
    p = DS__CAST(float *, d->mem);
    if (ds__dsk_tr_has(tr, 0)) ds__mla_tacts_carve(&d->dmla, &p, c, tr->B, tr->T);
    if (ds__dsk_tr_has(tr, 1)) ds__moe_tacts_carve(&d->dmoe, &p, c, tr->B, tr->T);
    d->cs = ds__tr_take(&p, (size_t)tr->T * c->qk_rope_dim);
    d->bias = ds__tr_take(&p, L * E);
    d->load = DS__CAST(double *, (void *)p);
    d->seen = d->load + L * E;
    if (ds__dsk_tr_has(tr, 0)) ds__rope_table(d->cs, tr->T, c->qk_rope_dim, c->rope_base);
    return DS_OK;
}

/* parameters of layer l's MLA block (ffn = 0) or MoE block (ffn = 1), deepseek2 tensor names */
static void ds__dsk_tr_layout(ds_trainer *tr, int l, int ffn) {
    const ds_model_config *c = &tr->mc;
    ds__tlayer *p = &tr->lp[l];
    int C = c->n_embd, H = c->n_head, Dq = ds__mla_dq(c), R = c->kv_lora_rank, Rq = c->q_lora_rank, E = c->n_expert, F = c->n_ff_expert;
    int SF = F * c->n_expert_shared;
    char nm[40];
#define DS__T(off, suffix, r, cl) (snprintf(nm, sizeof nm, "blk.%d." suffix, l), ds__tr_add_tensor(tr, nm, r, cl, &off))
    if (!ffn) {
        if (Rq) {
            DS__T(p->mla.wq_a, "attn_q_a.weight", Rq, C);
            DS__T(p->mla.q_a_norm, "attn_q_a_norm.weight", 1, Rq);
            DS__T(p->mla.wq_b, "attn_q_b.weight", H * Dq, Rq);
        } else {
            DS__T(p->mla.wq, "attn_q.weight", H * Dq, C);
        }
        DS__T(p->mla.wkv_a, "attn_kv_a_mqa.weight", R + c->qk_rope_dim, C);
        DS__T(p->mla.kv_a_norm, "attn_kv_a_norm.weight", 1, R);
        DS__T(p->mla.wkv_b, "attn_kv_b.weight", H * (c->qk_nope_dim + c->v_head_dim), R);
        DS__T(p->mla.wo, "attn_output.weight", C, H * c->v_head_dim);
        return;
    }
    DS__T(p->moe.gate_inp, "ffn_gate_inp.weight", E, C);
    DS__T(p->moe.gate_exps, "ffn_gate_exps.weight", E * F, C);
    DS__T(p->moe.up_exps, "ffn_up_exps.weight", E * F, C);
    DS__T(p->moe.down_exps, "ffn_down_exps.weight", E * C, F);
    if (SF) {
        DS__T(p->moe.gate_sh, "ffn_gate_shexp.weight", SF, C);
        DS__T(p->moe.up_sh, "ffn_up_shexp.weight", SF, C);
        DS__T(p->moe.down_sh, "ffn_down_shexp.weight", C, SF);
    }
#undef DS__T
}

/* a->xmid = x + MLA(ln1) */
static void ds__dsk_tr_attn_forward(ds_trainer *tr, int l, struct ds__tacts *a, int B, int T) {
    tr->ops.copy(a->xmid, tr->x[l], sizeof(float) * (size_t)B * T * tr->C);
    ds__mla_train_forward(tr, &tr->mc, &tr->lp[l].mla, &a->mla, a->ln1, a->xmid, 1, tr->dsk.cs, B, T);
}

/* xo = xmid + MoE(ln2); counts the choices */
static void ds__dsk_tr_ffn_forward(ds_trainer *tr, int l, struct ds__tacts *a, float *xo, int B, int T) {
    int e, E = tr->mc.n_expert;
    tr->ops.copy(xo, a->xmid, sizeof(float) * (size_t)B * T * tr->C);
    ds__moe_train_forward(tr, &tr->mc, &tr->lp[l].moe, tr->dsk.bias + (size_t)l * E, &a->moe, a->ln2, xo, 1, B * T);
    for (e = 0; e < E; e++) tr->dsk.seen[(size_t)l * E + e] += a->moe.count[e + 1] - a->moe.count[e];
}

/* tr->dln = d ln1 from tr->dres */
static void ds__dsk_tr_attn_backward(ds_trainer *tr, int l, const struct ds__tacts *a, int B, int T) {
    memset(tr->dln, 0, sizeof(float) * (size_t)B * T * tr->C);
    ds__mla_train_backward(tr, &tr->mc, &tr->lp[l].mla, &a->mla, &tr->dsk.dmla, a->ln1, tr->dres, tr->dln, tr->dsk.cs, B, T);
}

/* tr->dln = d ln2 from tr->dres; the balance loss's gradient is scaled like the main loss's */
static void ds__dsk_tr_ffn_backward(ds_trainer *tr, int l, const struct ds__tacts *a, int B, int T) {
    int e, E = tr->mc.n_expert;
    memset(tr->dln, 0, sizeof(float) * (size_t)B * T * tr->C);
    ds__moe_train_backward(tr, &tr->mc, &tr->lp[l].moe, &a->moe, &tr->dsk.dmoe, a->ln2, tr->dres, tr->dln, B * T, T, tr->tc.moe_balance_alpha * tr->dsk.dscale);
    for (e = 0; e < E; e++) tr->dsk.load[(size_t)l * E + e] += a->moe.count[e + 1] - a->moe.count[e];
}

/* after the gradients of a step: each MoE layer's biases move against its experts' loads */
static void ds__dsk_tr_after_step(ds_trainer *tr) {
    int l, e, E = tr->mc.n_expert;
    float rate = tr->tc.moe_bias_rate == 0.0f ? 1e-3f : tr->tc.moe_bias_rate;
    if (!tr->dsk.mem || !ds__dsk_tr_has(tr, 1)) return;
    for (l = 0; l < tr->L; l++) {
        double *load = tr->dsk.load + (size_t)l * E;
        if (tr->mc.layers[l].ffn != DS_FFN_MOE) continue;
        if (rate > 0.0f) ds__moe_bias_update(load, tr->dsk.bias + (size_t)l * E, E, rate);
        for (e = 0; e < E; e++) load[e] = 0.0;
    }
}

/* the MoE layers' selection biases, as deepseek2's exp_probs_b tensors */
static ds_status ds__dsk_tr_add_bias(ds_gguf_writer *w, const ds_trainer *tr, const char *prefix) {
    int l;
    int64_t ne[1];
    ds_status st;
    ne[0] = tr->mc.n_expert;
    if (*prefix) return DS_OK;   /* AdamW moments: the biases have none */
    for (l = 0; l < tr->L && tr->dsk.mem; l++) {
        char name[64];
        if (tr->mc.layers[l].ffn != DS_FFN_MOE) continue;
        snprintf(name, sizeof name, "%sblk.%d.exp_probs_b.bias", prefix, l);
        if ((st = ds_gguf_writer_add_tensor(w, name, DS_TYPE_F32, 1, ne, tr->dsk.bias + (size_t)l * tr->mc.n_expert)) != DS_OK) return st;
    }
    return DS_OK;
}

/* the selection biases back from a checkpoint */
static ds_status ds__dsk_tr_load_bias(ds_trainer *tr, const ds_gguf *g, const char *path) {
    int l, E = tr->mc.n_expert;
    for (l = 0; l < tr->L && tr->dsk.mem; l++) {
        const ds_gguf_tensor *t;
        char name[64];
        if (tr->mc.layers[l].ffn != DS_FFN_MOE) continue;
        snprintf(name, sizeof name, "blk.%d.exp_probs_b.bias", l);
        t = ds_gguf_find_tensor(g, name);
        if (!t || t->type != DS_TYPE_F32 || t->ne[0] != E || t->n_dims != 1) return ds__fail(DS_ERR_FORMAT, "%s: no F32 tensor '%s' of %d values", path, name, E);
        memcpy(tr->dsk.bias + (size_t)l * E, t->data, (size_t)E * sizeof(float));
    }
    return DS_OK;
}

/* A deepseek2 checkpoint's model config: the file's metadata, the vocabulary from the
   embedding, and the dense-attention sizes left to their defaults as a config file leaves
   them. Returns 0 for other architectures. */
static int ds__dsk_tr_read_model(const ds_gguf *g, const char *path, ds_model_config *mc, ds_status *st) {
    ds_str arch;
    const ds_gguf_tensor *emb = ds_gguf_find_tensor(g, "token_embd.weight");
    if (ds_gguf_get_str(g, "general.architecture", &arch) != DS_OK || arch.len != 9 || memcmp(arch.ptr, "deepseek2", 9)) return 0;
    *st = ds__deepseek2_read_config(g, mc);
    if (*st == DS_OK && (!emb || emb->ne[1] < 2 || emb->ne[1] > (1 << 24))) *st = ds__fail(DS_ERR_FORMAT, "%s: no token_embd.weight", path);
    if (*st != DS_OK) return 1;
    mc->n_vocab = (int)emb->ne[1];
    mc->tied_output = ds_gguf_find_tensor(g, "output.weight") == NULL;
    mc->n_head_kv = mc->head_dim = mc->n_rot = 0;
    *st = ds_model_config_check(mc);
    return 1;
}

#endif /* DS_NO_DEEPSEEK2 */

/* 0 for a layer that is not MoE, so also in a build without MoE (DS_NO_DEEPSEEK2) */
DS_API int ds_trainer_expert_share(ds_trainer *tr, int layer, double *share) {
    int e, E;
    double sum = 0.0, *seen;
    if (!tr || layer < 0 || layer >= tr->L || tr->mc.layers[layer].ffn != DS_FFN_MOE || !tr->dsk.mem) return 0;
    E = tr->mc.n_expert;
    seen = tr->dsk.seen + (size_t)layer * E;
    for (e = 0; e < E; e++) sum += seen[e];
    for (e = 0; e < E; e++) {
        if (share) share[e] = sum > 0.0 ? seen[e] / sum : 0.0;
        seen[e] = 0.0;
    }
    return E;
}


// >>finetune
/* ---- LoRA over a frozen base ------------------------------------------------------------------
   The trainer's matmul op (ds__tw_forward / ds__tw_backward in >>train) runs the frozen base
   weights and the low-rank update; this part lays out and initialises the A / B pairs, checks
   the base and writes the adapter. */
static const char *const ds__lora_names[DS__LW_COUNT] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};

/* (in, out) of projection k */
static void ds__lora_dims(const ds_trainer *tr, int k, int *in, int *out) {
    *in = k == DS__LW_O ? tr->qd : k == DS__LW_DOWN ? tr->F : tr->C;
    *out = k == DS__LW_Q ? tr->qd : k == DS__LW_K || k == DS__LW_V ? tr->kvd : k == DS__LW_O || k == DS__LW_DOWN ? tr->C : tr->F;
}

/* blk.N.<w>.weight.lora_a (r, in), then .lora_b (out, r), per layer in projection order */
static ds_status ds__lora_layout(ds_trainer *tr) {
    int l, k, in, out;
    char nm[48];
    tr->lora = DS__CAST(size_t *, ds__calloc((size_t)tr->L * DS__LW_COUNT * 2, sizeof(size_t)));
    if (!tr->lora) return ds__fail(DS_ERR_NO_MEMORY, "lora: out of memory");
    for (l = 0; l < tr->L; l++)
        for (k = 0; k < DS__LW_COUNT; k++) {
            size_t *ab = tr->lora + 2 * ((size_t)l * DS__LW_COUNT + k);
            if (!(tr->lc.targets & (1u << k))) {
                ab[0] = ab[1] = (size_t)-1;
                continue;
            }
            ds__lora_dims(tr, k, &in, &out);
            snprintf(nm, sizeof nm, "blk.%d.%s.weight.lora_a", l, ds__lora_names[k]);
            ds__tr_add_tensor(tr, nm, tr->lc.r, in, &ab[0]);
            snprintf(nm, sizeof nm, "blk.%d.%s.weight.lora_b", l, ds__lora_names[k]);
            ds__tr_add_tensor(tr, nm, out, tr->lc.r, &ab[1]);
        }
    return DS_OK;
}

/* PEFT's init: A ~ U(-1/sqrt(in), 1/sqrt(in)) (Kaiming uniform, a = sqrt 5), B = 0 */
static void ds__lora_init(ds_trainer *tr) {
    uint64_t s = tr->lc.seed ^ UINT64_C(0x10a);
    int i;
    size_t j;
    for (i = 0; i < tr->n_tensors; i++) {
        const ds__ttensor *t = &tr->tensors[i];
        float bound = 1.0f / sqrtf((float)t->cols);
        size_t n = (size_t)t->rows * t->cols;
        if (strstr(t->name, ".lora_b")) continue;   /* calloc'd: zero */
        for (j = 0; j < n; j++) tr->params[t->off + j] = (float)(2.0 * ds__tr_uniform(&s) - 1.0) * bound;
    }
}

/* scratch: the dropped-out input, h and dh, and the dequantized row block (at most 4 MiB, at
   least one row) */
static ds_status ds__lora_alloc(ds_trainer *tr) {
    size_t N = (size_t)tr->B * tr->T, widest = (size_t)DS__MAX(DS__MAX(tr->C, tr->F), tr->qd);
    size_t largest = DS__MAX((size_t)tr->V * tr->C, widest * (size_t)DS__MAX(DS__MAX(tr->C, tr->F), tr->qd));
    tr->wblk_floats = DS__MIN(largest, DS__MAX((size_t)1 << 20, widest));
    tr->lora_x = DS__CAST(float *, ds__calloc(N * widest, sizeof(float)));
    tr->lora_h = DS__CAST(float *, ds__calloc(N * (size_t)tr->lc.r, sizeof(float)));
    tr->lora_dh = DS__CAST(float *, ds__calloc(N * (size_t)tr->lc.r, sizeof(float)));
    tr->wblk = DS__CAST(float *, ds__calloc(tr->wblk_floats, sizeof(float)));
    if (!tr->lora_x || !tr->lora_h || !tr->lora_dh || !tr->wblk) return ds__fail(DS_ERR_NO_MEMORY, "lora: out of memory for scratch");
    return DS_OK;
}

/* the base's identity for checkpoints: XXH64 over every tensor's name, type, shape and data,
   and the file's size */
static void ds__lora_base_id(const ds_model *m, uint64_t *id, uint64_t *size) {
    ds__xxh64 h;
    int64_t i, n = ds_gguf_n_tensors(m->gguf);
    ds__xxh64_init(&h, 0);
    for (i = 0; i < n; i++) {
        const ds_gguf_tensor *t = ds_gguf_tensor_at(m->gguf, i);
        uint8_t meta[40];
        int d;
        ds__gguf_enc64(meta, (uint64_t)t->type);
        for (d = 0; d < 4; d++) ds__gguf_enc64(meta + 8 + 8 * d, (uint64_t)t->ne[d]);
        ds__xxh64_update(&h, t->name.ptr, t->name.len);
        ds__xxh64_update(&h, meta, sizeof meta);
        ds__xxh64_update(&h, t->data, (size_t)t->nbytes);
    }
    *id = ds__xxh64_digest(&h);
    *size = ds_gguf_file_size(m->gguf);
}

/* lc with the defaults filled; errors name the field */
static ds_status ds__lora_config_fill(ds_lora_config *c, uint64_t train_seed) {
    if (c->r == 0) c->r = 16;
    if (c->alpha == 0.0f) c->alpha = 32.0f;
    if (c->dropout == 0.0f) c->dropout = 0.1f;
    if (!c->targets) c->targets = DS_LORA_ALL;
    if (!c->seed) c->seed = train_seed;
    if (c->r < 0 || c->r > 65536) return ds__fail(DS_ERR_INVALID_ARG, "lora: rank %d: need 1..65536", c->r);
    if (!(c->alpha > 0.0f) || !(c->alpha <= FLT_MAX)) return ds__fail(DS_ERR_INVALID_ARG, "lora: alpha %g: need a positive number", (double)c->alpha);
    if (!(c->dropout < 1.0f)) return ds__fail(DS_ERR_INVALID_ARG, "lora: dropout %g: need < 1 (< 0: off)", (double)c->dropout);
    if (c->targets & ~DS_LORA_ALL) return ds__fail(DS_ERR_INVALID_ARG, "lora: unknown target bits 0x%x", c->targets & ~DS_LORA_ALL);
    return DS_OK;
}

DS_API ds_status ds_trainer_create_lora(const ds_model *base, const ds_lora_config *lc, const ds_train_config *tc, ds_trainer **out) {
    ds_lora_config c;
    ds_train_config t;
    ds_status st;
    int l;
    if (!base || !out) return ds__fail(DS_ERR_INVALID_ARG, "trainer_create_lora: NULL argument");
    *out = NULL;
    memset(&c, 0, sizeof c);
    memset(&t, 0, sizeof t);
    if (lc) c = *lc;
    if (tc) t = *tc;
    ds__train_defaults(&t);
    if ((st = ds__lora_config_fill(&c, t.seed)) != DS_OK) return st;
    for (l = 0; l < base->cfg.n_layer; l++)
        if (base->cfg.layers[l].attn != DS_ATTN_DENSE || base->cfg.layers[l].ffn != DS_FFN_DENSE)
            return ds__fail(DS_ERR_UNSUPPORTED, "lora: layer %d of the %s base is %s / %s; LoRA trains dense attention and SwiGLU layers only", l, base->cfg.arch,
                            ds__attn_names[base->cfg.layers[l].attn], ds__ffn_names[base->cfg.layers[l].ffn]);
    if ((st = ds__tr_create(&base->cfg, &t, base, &c, out)) != DS_OK) return st;
    ds__lora_base_id(base, &(*out)->base_id, &(*out)->base_size);
    return DS_OK;
}

DS_API const ds_lora_config *ds_trainer_lora_config(const ds_trainer *tr) { return tr && tr->base ? &tr->lc : NULL; }

DS_API ds_status ds_trainer_save_lora(ds_trainer *tr, const char *path) {
    ds_gguf_writer *w;
    ds_status st;
    int i;
    if (!tr || !path) return ds__fail(DS_ERR_INVALID_ARG, "save_lora: NULL argument");
    if (!tr->base) return ds__fail(DS_ERR_STATE, "save_lora: %s: the trainer trains a whole model, not LoRA pairs", path);
    if (!ds__tr_finite(tr, tr->params)) return ds__fail(DS_ERR_STATE, "save_lora: %s: the adapter holds inf or NaN; not saved", path);
    if ((st = ds_gguf_writer_create(&w)) != DS_OK) return st;
    ds_gguf_writer_set_checksum(w, 1);
    st = ds_gguf_writer_set_str(w, "general.architecture", tr->mc.arch);
    if (st == DS_OK) st = ds_gguf_writer_set_str(w, "general.type", "adapter");
    if (st == DS_OK) st = ds_gguf_writer_set_str(w, "general.name", "deepseek.h LoRA adapter");
    if (st == DS_OK) st = ds_gguf_writer_set_str(w, "adapter.type", "lora");
    if (st == DS_OK) st = ds_gguf_writer_set_f32(w, "adapter.lora.alpha", tr->lc.alpha);
    for (i = 0; st == DS_OK && i < tr->n_tensors; i++) {
        const ds__ttensor *t = &tr->tensors[i];
        int64_t ne[2];
        ne[0] = t->cols;   /* lora_a: [in, r]; lora_b: [r, out] */
        ne[1] = t->rows;
        st = ds_gguf_writer_add_tensor(w, t->name, DS_TYPE_F32, 2, ne, tr->params + t->off);
    }
    if (st == DS_OK) st = ds_gguf_writer_write(w, path);
    ds_gguf_writer_free(w);
    return st;
}

/* checkpoints of a LoRA trainer record its config and the base's identity */
static ds_status ds__lora_ckpt_kv(ds_gguf_writer *w, const ds_trainer *tr) {
    ds_status st = ds_gguf_writer_set_i32(w, "lora.r", tr->lc.r);
    if (st == DS_OK) st = ds_gguf_writer_set_f32(w, "lora.alpha", tr->lc.alpha);
    if (st == DS_OK) st = ds_gguf_writer_set_f32(w, "lora.dropout", tr->lc.dropout);
    if (st == DS_OK) st = ds_gguf_writer_set_u32(w, "lora.targets", tr->lc.targets);
    if (st == DS_OK) st = ds_gguf_writer_set_u64(w, "lora.seed", tr->lc.seed);
    if (st == DS_OK) st = ds_gguf_writer_set_u64(w, "lora.base_xxh64", tr->base_id);
    if (st == DS_OK) st = ds_gguf_writer_set_u64(w, "lora.base_size", tr->base_size);
    return st;
}

static ds_status ds__lora_read(const ds_gguf *g, ds_lora_config *lc, uint64_t *id, uint64_t *size, const char *path) {
    int32_t r;
    memset(lc, 0, sizeof *lc);
    if (!ds_gguf_find(g, "lora.r")) return ds__fail(DS_ERR_NOT_FOUND, "%s: not a LoRA checkpoint (no lora.r)", path);
    if (ds_gguf_get_i32(g, "lora.r", &r) != DS_OK || ds_gguf_get_f32(g, "lora.alpha", &lc->alpha) != DS_OK ||
        ds_gguf_get_f32(g, "lora.dropout", &lc->dropout) != DS_OK || ds_gguf_get_u32(g, "lora.targets", &lc->targets) != DS_OK ||
        ds_gguf_get_u64(g, "lora.seed", &lc->seed) != DS_OK || ds_gguf_get_u64(g, "lora.base_xxh64", id) != DS_OK ||
        ds_gguf_get_u64(g, "lora.base_size", size) != DS_OK)
        return ds__fail(DS_ERR_FORMAT, "%s: missing or bad lora.* keys", path);
    lc->r = r;
    if (r <= 0 || !(lc->alpha > 0.0f) || !(lc->dropout < 1.0f) || !lc->targets || (lc->targets & ~DS_LORA_ALL))
        return ds__fail(DS_ERR_FORMAT, "%s: impossible LoRA config (r %d, alpha %g, dropout %g, targets 0x%x)", path, r, (double)lc->alpha, (double)lc->dropout, lc->targets);
    return DS_OK;
}

static ds_status ds__lora_ckpt_check(const ds_trainer *tr, const ds_gguf *g, const char *path) {
    ds_lora_config lc;
    uint64_t id = 0, size = 0;
    ds_status st;
    int has = ds_gguf_find(g, "lora.r") != NULL;
    if (!tr->base) return has ? ds__fail(DS_ERR_INVALID_ARG, "%s: a LoRA checkpoint; resume it with a LoRA trainer over its base", path) : DS_OK;
    if (!has) return ds__fail(DS_ERR_INVALID_ARG, "%s: a whole-model checkpoint, not a LoRA one", path);
    if ((st = ds__lora_read(g, &lc, &id, &size, path)) != DS_OK) return st;
    if (id != tr->base_id || size != tr->base_size)
        return ds__fail(DS_ERR_INVALID_ARG, "%s: made over another base model (%llu bytes, data hash %016llx; this base: %llu bytes, %016llx)", path,
                        (unsigned long long)size, (unsigned long long)id, (unsigned long long)tr->base_size, (unsigned long long)tr->base_id);
    if (lc.r != tr->lc.r || lc.targets != tr->lc.targets || lc.alpha != tr->lc.alpha || lc.dropout != tr->lc.dropout || lc.seed != tr->lc.seed)
        return ds__fail(DS_ERR_INVALID_ARG, "%s: LoRA config r %d alpha %g dropout %g targets 0x%x differs from the trainer's (r %d alpha %g dropout %g targets 0x%x)", path,
                        lc.r, (double)lc.alpha, (double)lc.dropout, lc.targets, tr->lc.r, (double)tr->lc.alpha, (double)tr->lc.dropout, tr->lc.targets);
    return DS_OK;
}

DS_API ds_status ds_checkpoint_read_lora(const char *path, ds_lora_config *lc) {
    ds_gguf *g;
    ds_status st;
    uint64_t id, size;
    if (!path || !lc) return ds__fail(DS_ERR_INVALID_ARG, "checkpoint_read_lora: NULL argument");
    if ((st = ds_gguf_open(path, &g)) != DS_OK) return st;
    st = ds__lora_read(g, lc, &id, &size, path);
    ds_gguf_free(g);
    return st;
}

/* ---- fine-tuning data ------------------------------------------------------------------------ */
struct ds_sft_data {
    int32_t *tok;        /* every example's tokens, one after another */
    uint8_t *learn;      /* 1: the token is a target */
    int64_t *start;      /* n + 1 offsets into tok */
    int64_t n, n_tok, n_learn, cap_tok, cap_ex;
};

typedef struct ds__sft_ctx {
    ds_sft_data *d;
    const ds_model *m;
    const ds_tokenizer *tk;
    const char *where;   /* "file:line" */
    int32_t *ids;
    size_t ids_cap;
    char *buf, *buf2;    /* chat renderings */
    size_t buf_cap, buf2_cap;
} ds__sft_ctx;

/* p (n items of elem bytes) copied into room for cap items; NULL when out of memory (p kept) */
static void *ds__sft_grow(void *p, size_t n, size_t cap, size_t elem) {
    void *np = ds__calloc(cap, elem);
    if (!np) return NULL;
    if (p) memcpy(np, p, n * elem);
    ds_free(p);
    return np;
}

static ds_status ds__sft_push(ds__sft_ctx *c, const int32_t *ids, size_t n, int learn) {
    ds_sft_data *d = c->d;
    size_t i;
    if ((int64_t)n > d->cap_tok - d->n_tok) {
        int64_t cap = DS__MAX(d->cap_tok * 2, d->n_tok + (int64_t)n + 1024);
        int32_t *t = DS__CAST(int32_t *, ds__sft_grow(d->tok, (size_t)d->n_tok, (size_t)cap, sizeof *t));
        uint8_t *l;
        if (!t) return ds__fail(DS_ERR_NO_MEMORY, "%s: out of memory", c->where);
        d->tok = t;
        l = DS__CAST(uint8_t *, ds__sft_grow(d->learn, (size_t)d->n_tok, (size_t)cap, 1));
        if (!l) return ds__fail(DS_ERR_NO_MEMORY, "%s: out of memory", c->where);
        d->learn = l;
        d->cap_tok = cap;
    }
    for (i = 0; i < n; i++) {
        d->tok[d->n_tok] = ids[i];
        d->learn[d->n_tok++] = (uint8_t)learn;
    }
    d->n_learn += learn ? (int64_t)n : 0;
    return DS_OK;
}

/* tokenize text (special markup parsed when `special`) and append it */
static ds_status ds__sft_text(ds__sft_ctx *c, const char *text, size_t len, int flags, int learn) {
    size_t n = 0;
    ds_status st;
    for (;;) {
        st = ds_tokenize(c->tk, text, len, flags, c->ids, c->ids_cap, &n);
        if (st != DS_ERR_BOUNDS) break;
        ds_free(c->ids);
        c->ids_cap = n + 16;
        c->ids = DS__CAST(int32_t *, ds__calloc(c->ids_cap, sizeof(int32_t)));
        if (!c->ids) return ds__fail(DS_ERR_NO_MEMORY, "%s: out of memory", c->where);
    }
    if (st != DS_OK) {
        char why[300];
        snprintf(why, sizeof why, "%.299s", ds_last_error());
        return ds__fail(st, "%s: %s", c->where, why);
    }
    return ds__sft_push(c, c->ids, n, learn);
}
static ds_status ds__sft_token(ds__sft_ctx *c, int32_t id, int learn) { return id < 0 ? DS_OK : ds__sft_push(c, &id, 1, learn); }

/* the value of `key` in object node obj, or 0 */
static uint32_t ds__json_member(const ds__json *d, uint32_t obj, const char *key) {
    uint32_t k;
    size_t kl = strlen(key);
    for (k = d->nodes[obj].first; k; k = d->nodes[d->nodes[k].next].next) {
        const ds__json_node *kn = &d->nodes[k];
        if (!kn->escaped && kn->n == kl && !memcmp(d->src + kn->first, key, kl)) return kn->next;
        if (!kn->next) break;
    }
    return 0;
}
/* string node i unescaped into a NUL-terminated ds__malloc'd copy (NULL: not a string / no memory) */
static char *ds__json_strdup(const ds__json *d, uint32_t i, size_t *len) {
    char *s;
    if (!i || d->nodes[i].type != DS__JSON_STRING) return NULL;
    s = DS__CAST(char *, ds__calloc((size_t)d->nodes[i].n + 1, 1));
    if (!s) return NULL;
    *len = ds__json_str(d, i, s);
    s[*len] = 0;
    return s;
}

/* renders msgs[0..n) (+ the assistant opening) into *buf */
static ds_status ds__sft_render(ds__sft_ctx *c, const ds_chat_message *msgs, int n, int add, char **buf, size_t *cap, size_t *len) {
    ds_status st;
    for (;;) {
        st = *buf ? ds_chat_apply(c->m, DS_CHAT_AUTO, msgs, n, add, *buf, *cap, len) : DS_ERR_BOUNDS;
        if (st != DS_ERR_BOUNDS) break;
        ds_free(*buf);
        *cap = DS__MAX(*cap * 2, (*buf ? *len : 0) + 256);
        *buf = DS__CAST(char *, ds__calloc(*cap, 1));
        if (!*buf) return ds__fail(DS_ERR_NO_MEMORY, "%s: out of memory", c->where);
    }
    if (st != DS_OK) {
        char why[300];
        snprintf(why, sizeof why, "%.299s", ds_last_error());
        return ds__fail(st, "%s: chat template: %s", c->where, why);
    }
    return DS_OK;
}

/* a conversation: each turn is the difference between the renderings of the conversation
   up to it and up to the one before; an assistant turn's opening (what add_assistant adds) is
   context, its content and end marker are learnt */
static ds_status ds__sft_messages(ds__sft_ctx *c, const ds__json *d, uint32_t arr) {
    ds_chat_message *msgs = NULL;
    char **own = NULL;
    uint32_t e;
    int n = 0, i, learnt = 0;
    size_t prev = 0, len = 0, glen = 0, k;
    ds_status st = DS_OK;
    if (d->nodes[arr].type != DS__JSON_ARRAY || !d->nodes[arr].n) return ds__fail(DS_ERR_FORMAT, "%s: \"messages\" must be a non-empty array", c->where);
    msgs = DS__CAST(ds_chat_message *, ds__calloc(d->nodes[arr].n, sizeof *msgs));
    own = DS__CAST(char **, ds__calloc((size_t)d->nodes[arr].n * 2, sizeof *own));
    if (!msgs || !own) st = ds__fail(DS_ERR_NO_MEMORY, "%s: out of memory", c->where);
    for (e = d->nodes[arr].first; st == DS_OK && e; e = d->nodes[e].next, n++) {
        size_t l1, l2;
        if (d->nodes[e].type != DS__JSON_OBJECT) {
            st = ds__fail(DS_ERR_FORMAT, "%s: messages[%d] is not an object", c->where, n);
            break;
        }
        own[2 * n] = ds__json_strdup(d, ds__json_member(d, e, "role"), &l1);
        own[2 * n + 1] = ds__json_strdup(d, ds__json_member(d, e, "content"), &l2);
        if (!own[2 * n] || !own[2 * n + 1]) {
            st = ds__fail(DS_ERR_FORMAT, "%s: messages[%d] needs string \"role\" and \"content\"", c->where, n);
            break;
        }
        msgs[n].role = own[2 * n];
        msgs[n].content = own[2 * n + 1];
        msgs[n].content_len = l2;   /* a \u0000 in the text stays text */
    }
    for (i = 0; st == DS_OK && i < n; i++) {
        int asst = !strcmp(msgs[i].role, "assistant");
        glen = prev;
        if (asst && (st = ds__sft_render(c, msgs, i, 1, &c->buf2, &c->buf2_cap, &glen)) != DS_OK) break;
        if ((st = ds__sft_render(c, msgs, i + 1, 0, &c->buf, &c->buf_cap, &len)) != DS_OK) break;
        if (glen < prev || len < glen || (asst && memcmp(c->buf2, c->buf, glen))) {
            st = ds__fail(DS_ERR_UNSUPPORTED, "%s: messages[%d]: the chat template does not render turn by turn", c->where, i);
            break;
        }
        /* buf[prev, glen): context (earlier turns' markup, the assistant opening); buf[glen, len): the turn */
        if (glen > prev && (st = ds__sft_text(c, c->buf + prev, glen - prev, DS_TOKENIZE_PARSE_SPECIAL, 0)) != DS_OK) break;
        if (len > glen && (st = ds__sft_text(c, c->buf + glen, len - glen, DS_TOKENIZE_PARSE_SPECIAL, asst)) != DS_OK) break;
        learnt |= asst && len > glen;
        prev = len;
    }
    if (st == DS_OK && !learnt) st = ds__fail(DS_ERR_FORMAT, "%s: no assistant turn to learn", c->where);
    for (k = 0; own && k < (size_t)d->nodes[arr].n * 2; k++) ds_free(own[k]);
    ds_free(own);
    ds_free(msgs);
    return st;
}

/* one line: an example appended to c->d */
static ds_status ds__sft_line(ds__sft_ctx *c, const char *line, size_t len) {
    ds__json d;
    ds_status st;
    uint32_t v;
    int bos = ds_tokenizer_adds_bos(c->tk) ? DS_TOKENIZE_ADD_BOS : 0;
    int64_t learn0 = c->d->n_learn;
    if ((st = ds__json_parse(line, len, c->where, &d)) != DS_OK) return st;
    if (d.nodes[0].type != DS__JSON_OBJECT) {
        ds__json_free(&d);
        return ds__fail(DS_ERR_FORMAT, "%s: not a JSON object", c->where);
    }
    if ((v = ds__json_member(&d, 0, "messages")) != 0) {
        st = ds__sft_messages(c, &d, v);
    } else if ((v = ds__json_member(&d, 0, "text")) != 0 || ds__json_member(&d, 0, "completion")) {
        uint32_t pr = v ? 0 : ds__json_member(&d, 0, "prompt"), co = v ? v : ds__json_member(&d, 0, "completion");
        char *p = NULL, *s;
        size_t pl = 0, sl = 0;
        if (!v && !pr) st = ds__fail(DS_ERR_FORMAT, "%s: \"completion\" without \"prompt\"", c->where);
        if (st == DS_OK && pr && !(p = ds__json_strdup(&d, pr, &pl))) st = ds__fail(DS_ERR_FORMAT, "%s: \"prompt\" must be a string", c->where);
        s = st == DS_OK ? ds__json_strdup(&d, co, &sl) : NULL;
        if (st == DS_OK && !s) st = ds__fail(DS_ERR_FORMAT, "%s: \"%s\" must be a string", c->where, v ? "text" : "completion");
        if (st == DS_OK && p) st = ds__sft_text(c, p, pl, bos, 0);
        if (st == DS_OK) st = ds__sft_text(c, s, sl, p ? 0 : bos, 1);
        if (st == DS_OK) st = ds__sft_token(c, ds_tokenizer_eos(c->tk), 1);
        if (st == DS_OK && c->d->n_learn == learn0) st = ds__fail(DS_ERR_FORMAT, "%s: nothing to learn (empty %s)", c->where, v ? "text" : "completion");
        ds_free(p);
        ds_free(s);
    } else {
        st = ds__fail(DS_ERR_FORMAT, "%s: need \"text\", \"prompt\" + \"completion\", or \"messages\"", c->where);
    }
    ds__json_free(&d);
    return st;
}

DS_API ds_status ds_sft_data_load_memory(const ds_model *m, const char *text, size_t len, const char *name, ds_sft_data **out) {
    ds__sft_ctx c;
    ds_sft_data *d;
    ds_status st = DS_OK;
    size_t pos = 0;
    int line = 0;
    char where[300];
    if (!m || (!text && len) || !out) return ds__fail(DS_ERR_INVALID_ARG, "sft_data_load: NULL argument");
    *out = NULL;
    if (!name) name = "data";
    memset(&c, 0, sizeof c);
    d = DS__CAST(ds_sft_data *, ds__calloc(1, sizeof *d));
    if (!d) return ds__fail(DS_ERR_NO_MEMORY, "%s: out of memory", name);
    c.d = d;
    c.m = m;
    c.tk = ds_model_tokenizer(m);
    c.where = where;
    if (!c.tk) st = ds__fail(DS_ERR_INVALID_ARG, "%s: the model has no tokenizer", name);
    while (st == DS_OK && pos < len) {
        const char *nl = DS__CAST(const char *, memchr(text + pos, '\n', len - pos));
        size_t end = nl ? (size_t)(nl - text) : len, a = pos, b = end;
        line++;
        pos = end + 1;
        while (a < b && (text[a] == ' ' || text[a] == '\t' || text[a] == '\r')) a++;
        while (b > a && (text[b - 1] == ' ' || text[b - 1] == '\t' || text[b - 1] == '\r')) b--;
        if (a == b) continue;
        snprintf(where, sizeof where, "%.280s:%d", name, line);
        if (d->n + 2 > d->cap_ex) {
            int64_t cap = DS__MAX(2 * d->cap_ex, 64);
            int64_t *s = DS__CAST(int64_t *, ds__sft_grow(d->start, (size_t)d->n + 1, (size_t)cap, sizeof *s));
            if (!s) {
                st = ds__fail(DS_ERR_NO_MEMORY, "%s: out of memory", where);
                break;
            }
            d->start = s;
            d->cap_ex = cap;
        }
        d->start[d->n] = d->n_tok;
        if ((st = ds__sft_line(&c, text + a, b - a)) != DS_OK) break;
        d->start[++d->n] = d->n_tok;
    }
    if (st == DS_OK && !d->n) st = ds__fail(DS_ERR_INVALID_ARG, "%s: no examples (an empty dataset)", name);
    ds_free(c.ids);
    ds_free(c.buf);
    ds_free(c.buf2);
    if (st != DS_OK) {
        ds_sft_data_free(d);
        return st;
    }
    *out = d;
    return DS_OK;
}

DS_API ds_status ds_sft_data_load(const ds_model *m, const char *path, ds_sft_data **out) {
    ds_mapped_file f;
    ds_status st;
    if (!m || !path || !out) return ds__fail(DS_ERR_INVALID_ARG, "sft_data_load: NULL argument");
    *out = NULL;
    if ((st = ds_map_file(path, &f)) != DS_OK) return st;
    st = ds_sft_data_load_memory(m, DS__CAST(const char *, f.data), f.size, path, out);
    ds_unmap_file(&f);
    return st;
}

DS_API void ds_sft_data_free(ds_sft_data *d) {
    if (!d) return;
    ds_free(d->tok);
    ds_free(d->learn);
    ds_free(d->start);
    ds_free(d);
}
DS_API int64_t ds_sft_data_examples(const ds_sft_data *d) { return d ? d->n : 0; }
DS_API int64_t ds_sft_data_tokens(const ds_sft_data *d, int64_t *learnt) {
    if (learnt) *learnt = d ? d->n_learn : 0;
    return d ? d->n_tok : 0;
}

DS_API ds_status ds_sft_data_pack(const ds_sft_data *d, int seq_len, uint64_t seed, int epoch, int32_t **tokens, int32_t **targets, int64_t *n) {
    int64_t *order, i, nw, pos = 0;
    int32_t *tok, *tgt;
    if (!d || !tokens || !targets || !n || seq_len <= 0) return ds__fail(DS_ERR_INVALID_ARG, "sft_data_pack: bad arguments");
    *tokens = *targets = NULL;
    *n = 0;
    nw = (d->n_tok - 1 + seq_len - 1) / seq_len;
    if (nw < 1) nw = 1;
    order = DS__CAST(int64_t *, ds__calloc((size_t)d->n, sizeof *order));
    tok = DS__CAST(int32_t *, ds__calloc((size_t)(nw * seq_len), sizeof *tok));
    tgt = DS__CAST(int32_t *, ds__calloc((size_t)(nw * seq_len), sizeof *tgt));
    if (!order || !tok || !tgt) {
        ds_free(order); ds_free(tok); ds_free(tgt);
        return ds__fail(DS_ERR_NO_MEMORY, "sft_data_pack: out of memory for %lld windows", (long long)nw);
    }
    for (i = 0; i < d->n; i++) order[i] = i;
    if (epoch >= 0) {   /* Fisher-Yates from (seed, epoch) */
        uint64_t s = seed ^ (UINT64_C(0x9E3779B97F4A7C15) * (uint64_t)(epoch + 1));
        for (i = d->n - 1; i > 0; i--) {
            int64_t j = (int64_t)(ds__tr_next(&s) % (uint64_t)(i + 1)), k = order[i];
            order[i] = order[j];
            order[j] = k;
        }
    }
    for (i = 0; i < nw * seq_len; i++) tgt[i] = DS_TARGET_IGNORE;
    /* the stream position p feeds tok[p] (p < nw * T) and tgt[p - 1] (p >= 1), the windows
       being consecutive slices with the next window's first token as the last target */
    for (i = 0; i < d->n; i++) {
        int64_t e = order[i], k;
        for (k = d->start[e]; k < d->start[e + 1]; k++, pos++) {
            if (pos < nw * seq_len) tok[pos] = d->tok[k];
            if (pos >= 1 && pos - 1 < nw * seq_len && d->learn[k]) tgt[pos - 1] = d->tok[k];
        }
    }
    ds_free(order);
    *tokens = tok;
    *targets = tgt;
    *n = nw;
    return DS_OK;
}

/* windows per optimizer step, and the steps of one epoch over d */
static int ds__sft_spe(const ds_sft_data *d, const ds_trainer *tr) {
    int64_t nw = DS__MAX(1, (d->n_tok - 1 + tr->T - 1) / tr->T), per = (int64_t)tr->B * tr->tc.grad_accum;
    return (int)((nw + per - 1) / per);
}

DS_API ds_status ds_sft_data_step(const ds_sft_data *d, const ds_trainer *tr, int step, int32_t *tokens, int32_t *targets, int *steps_per_epoch) {
    int32_t *tok = NULL, *tgt = NULL;
    int64_t nw = 0, per, w0, j;
    size_t T;
    int spe;
    ds_status st;
    if (!d || !tr || !tokens || !targets || step < 0) return ds__fail(DS_ERR_INVALID_ARG, "sft_data_step: bad arguments");
    T = (size_t)tr->T;
    per = (int64_t)tr->B * tr->tc.grad_accum;
    spe = ds__sft_spe(d, tr);
    if (steps_per_epoch) *steps_per_epoch = spe;
    if ((st = ds_sft_data_pack(d, tr->T, tr->tc.seed, step / spe, &tok, &tgt, &nw)) != DS_OK) return st;
    w0 = (int64_t)(step % spe) * per;
    for (j = 0; j < per; j++) {
        size_t k;
        if (w0 + j < nw) {
            memcpy(tokens + (size_t)j * T, tok + (size_t)(w0 + j) * T, T * sizeof *tok);
            memcpy(targets + (size_t)j * T, tgt + (size_t)(w0 + j) * T, T * sizeof *tgt);
        } else {
            for (k = 0; k < T; k++) {
                tokens[(size_t)j * T + k] = 0;
                targets[(size_t)j * T + k] = DS_TARGET_IGNORE;
            }
        }
    }
    ds_free(tok);
    ds_free(tgt);
    return DS_OK;
}

DS_API ds_status ds_finetune(const ds_model *m, const ds_lora_config *lc, const ds_sft_data *d, const ds_finetune_config *fc, ds_trainer **out) {
    ds_finetune_config c;
    ds_trainer *tr = NULL;
    int32_t *tok = NULL, *tgt = NULL;
    int spe, s;
    size_t n;
    ds_status st;
    if (!m || !d || !out) return ds__fail(DS_ERR_INVALID_ARG, "finetune: NULL argument");
    *out = NULL;
    memset(&c, 0, sizeof c);
    if (fc) c = *fc;
    if (c.epochs <= 0) c.epochs = 3;
    if (c.train.lr == 0.0f) c.train.lr = 1e-3f;
    if (c.train.seq_len <= 0) c.train.seq_len = 256;
    if (c.train.weight_decay == 0.0f) c.train.weight_decay = -1.0f;
    c.train.steps = 1;   /* a first trainer to learn the schedule from its batch settings */
    if ((st = ds_trainer_create_lora(m, lc, &c.train, &tr)) != DS_OK) return st;
    spe = ds__sft_spe(d, tr);
    tr->tc.steps = spe * c.epochs;
    if (!c.train.warmup) tr->tc.warmup = tr->tc.steps / 20;
    n = (size_t)tr->B * tr->T * tr->tc.grad_accum;
    tok = DS__CAST(int32_t *, ds__calloc(n, sizeof *tok));
    tgt = DS__CAST(int32_t *, ds__calloc(n, sizeof *tgt));
    st = tok && tgt ? DS_OK : ds__fail(DS_ERR_NO_MEMORY, "finetune: out of memory");
    for (s = 0; st == DS_OK && s < tr->tc.steps; s++) {
        ds_train_step_info info;
        if ((st = ds_sft_data_step(d, tr, s, tok, tgt, NULL)) != DS_OK) break;
        if ((st = ds_trainer_step_tokens(tr, tok, tgt, &info)) != DS_OK) break;
        if (c.on_step && c.on_step(c.user, &info, s / spe)) break;
    }
    ds_free(tok);
    ds_free(tgt);
    if (st != DS_OK) {
        ds_trainer_free(tr);
        return st;
    }
    *out = tr;
    return DS_OK;
}

#endif /* DS_NO_TRAIN */
#ifdef __cplusplus
}
#endif
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
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
