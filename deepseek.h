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
/* GGUF v2/v3 files (little-endian), read with full validation and written atomically.
   ds_gguf_open() maps the file and checks everything before returning: magic, version,
   counts against the bytes left, string and array lengths, value and tensor type ids, n_dims
   <= 4, element counts and byte sizes without overflow, general.alignment (u32, power of two,
   default 32), every tensor offset aligned and every tensor inside the file, no two tensors
   overlapping, no duplicate keys or tensor names. Any violation returns a DS_ERR_* with a
   message naming the key or tensor and the offsets. Everything returned points into the
   file and lives until ds_gguf_close(). A ds_gguf is read-only: threads may share it.
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
DS_API void ds_gguf_close(ds_gguf *g);
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
/* atomic: writes PATH.tmp, fsyncs, renames over PATH (and fsyncs the folder) */
DS_API ds_status ds_gguf_writer_write(ds_gguf_writer *w, const char *path);

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
    /* dynamic loss scaling (used when precision != f32, or when loss_scale > 0 is given) */
    float loss_scale;       /* initial scale (0: 65536) */
    int loss_scale_window;  /* clean steps before doubling (0: 2000) */
    int no_loss_scaling;    /* 1: never scale */
    /* the CLI's settings (the library keeps them in checkpoints) */
    int checkpoint_every;   /* 0: 100 */
    int keep_checkpoints;   /* 0: 3 */
    int eval_every;         /* 0: 50 */
    int eval_batches;       /* 0: 8 */
} ds_train_config;

/* Parse a config file: "key = value" lines, '#' comments. Model keys (n_vocab, n_embd,
   n_layer, n_head, n_head_kv, head_dim, n_ff, n_ctx, norm_eps, rope_base, tied_output,
   arch, layers.attn = dense, layers.ffn = dense, layer.N.attn / layer.N.ffn) fill mc;
   training keys (precision, batch, seq_len, grad_accum, steps, lr, min_lr, warmup,
   weight_decay, beta1, beta2, adam_eps, grad_clip, seed, init_std, recompute, threads,
   loss_scale, loss_scale_window, checkpoint_every, keep_checkpoints, eval_every,
   eval_batches) fill tc (which may be NULL: training keys are then errors). Keys not
   in `text` keep the values already in the structs, so flags can be applied on top by calling
   again with "key = value". An unknown key, a bad value or an impossible shape is an error
   naming the line. `where` names the text in messages (a file name; NULL: "config"). */
DS_API ds_status ds_model_config_parse(const char *text, ds_model_config *mc, ds_train_config *tc, const char *where);
/* Fill defaults (0 fields) and check that the shape is trainable. */
DS_API ds_status ds_model_config_check(ds_model_config *mc);

/* ---- token shards: magic "DSTK", version 1, bytes per token (2 or 4), count, tokens --------- */
DS_API ds_status ds_token_shard_write(const char *path, const uint32_t *tokens, uint64_t n, int n_vocab);
typedef struct ds_train_data ds_train_data;
/* val_path may be NULL (no validation). */
DS_API ds_status ds_train_data_open(const char *train_path, const char *val_path, ds_train_data **out);
DS_API void ds_train_data_free(ds_train_data *d);
DS_API uint64_t ds_train_data_count(const ds_train_data *d, int val);

/* ---- the trainer --------------------------------------------------------------------------- */
typedef struct ds_trainer ds_trainer;
typedef struct ds_train_step_info {
    int step;               /* the optimizer step just done (1-based) */
    float loss;             /* mean training loss of the step (all micro-batches) */
    float lr;
    float grad_norm;        /* before clipping, unscaled */
    float loss_scale;       /* scale used for this step (1 when scaling is off) */
    int skipped;            /* 1: inf/NaN gradients, the update was skipped */
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
   and the step). */
DS_API ds_status ds_trainer_step(ds_trainer *tr, ds_train_data *d, ds_train_step_info *info);
/* One optimizer step on caller-given tokens: tokens and targets are grad_accum * batch *
   seq_len ids each. */
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
/* Peak bytes of the activation arena (what recompute shrinks). */
DS_API size_t ds_trainer_activation_bytes(const ds_trainer *tr);
/* Matmul floating-point operations of one optimizer step (forward + backward). */
DS_API double ds_trainer_matmul_flops(const ds_trainer *tr);
/* Seconds spent in matmuls since creation (for the fraction-of-peak figure): wall-clock, and
   CPU time of the whole process (all threads; unaffected by other programs on the machine). */
DS_API double ds_trainer_matmul_seconds(const ds_trainer *tr);
DS_API double ds_trainer_matmul_cpu_seconds(const ds_trainer *tr);
DS_API int ds_trainer_step_count(const ds_trainer *tr);

/* Checkpoint: weights, AdamW moments, step, RNG, data cursor, loss scaler and both configs,
   as a GGUF file written atomically (temp file, fsync, rename). Loading restores all of it;
   training then continues bit-identically to an uninterrupted run. */
DS_API ds_status ds_trainer_save_checkpoint(ds_trainer *tr, const char *path);
DS_API ds_status ds_trainer_load_checkpoint(ds_trainer *tr, const char *path);
/* Read only the configs stored in a checkpoint (to create the trainer before loading). */
DS_API ds_status ds_checkpoint_read_config(const char *path, ds_model_config *mc, ds_train_config *tc);

/* The trained model as a llama GGUF that `deepseek run` and llama.cpp load: F32 weights,
   tokenizer metadata copied from `tokenizer` (every KV of that GGUF: a tokenizer or model
   file), or, when NULL, a byte-level vocabulary (token i < 256 = byte i). */
DS_API ds_status ds_trainer_save_model(ds_trainer *tr, const char *path, const ds_gguf *tokenizer);

/* Measured f32 FMA peak of this machine (GFLOP/s, wall-clock) with n_threads threads: a
   register-only FMA loop of the widest vector unit the kernels use, run for about `seconds`.
   per_core (may be NULL) receives the rate per second of thread CPU time: one core's peak,
   which other programs sharing the machine do not distort. */
DS_API double ds_cpu_f32_peak_gflops(int n_threads, double seconds, double *per_core);


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
typedef struct ds__gguf_index {
    uint64_t *hash;   /* per slot */
    int64_t *slot;    /* item index + 1; 0 = empty */
    uint64_t mask;    /* capacity - 1 (capacity a power of two) */
    int64_t count;
} ds__gguf_index;

static uint64_t ds__gguf_hash(const char *s, size_t n) {   /* FNV-1a */
    uint64_t h = UINT64_C(1469598103934665603);
    size_t i;
    for (i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * UINT64_C(1099511628211);
    return h;
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
    return DS_OK;
}
/* index of the item named s[0..n), or -1 */
static int64_t ds__gguf_index_find(const ds__gguf_index *ix, const char *s, size_t n, ds__gguf_key_fn key_at, const void *owner) {
    uint64_t h = ds__gguf_hash(s, n), i;
    if (!ix->slot) return -1;
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
    uint64_t h = ds__gguf_hash(s, n), i;
    for (i = h & ix->mask; ix->slot[i]; i = (i + 1) & ix->mask) {}
    ix->hash[i] = h;
    ix->slot[i] = idx + 1;
    ix->count++;
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
        ds_gguf_close(g);
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

DS_API void ds_gguf_close(ds_gguf *g) {
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
DS_API ds_status ds_gguf_writer_set_u32(ds_gguf_writer *w, const char *key, uint32_t v) {
    uint8_t b[4];
    ds__gguf_enc32(b, v);
    return ds_gguf_writer_set_scalar(w, key, DS_GGUF_U32, b);
}
DS_API ds_status ds_gguf_writer_set_i32(ds_gguf_writer *w, const char *key, int32_t v) {
    uint8_t b[4];
    ds__gguf_enc32(b, (uint32_t)v);
    return ds_gguf_writer_set_scalar(w, key, DS_GGUF_I32, b);
}
DS_API ds_status ds_gguf_writer_set_u64(ds_gguf_writer *w, const char *key, uint64_t v) {
    uint8_t b[8];
    ds__gguf_enc64(b, v);
    return ds_gguf_writer_set_scalar(w, key, DS_GGUF_U64, b);
}
DS_API ds_status ds_gguf_writer_set_i64(ds_gguf_writer *w, const char *key, int64_t v) {
    uint8_t b[8];
    ds__gguf_enc64(b, (uint64_t)v);
    return ds_gguf_writer_set_scalar(w, key, DS_GGUF_I64, b);
}
DS_API ds_status ds_gguf_writer_set_f32(ds_gguf_writer *w, const char *key, float v) {
    uint32_t u;
    uint8_t b[4];
    memcpy(&u, &v, 4);
    ds__gguf_enc32(b, u);
    return ds_gguf_writer_set_scalar(w, key, DS_GGUF_F32, b);
}
DS_API ds_status ds_gguf_writer_set_f64(ds_gguf_writer *w, const char *key, double v) {
    uint64_t u;
    uint8_t b[8];
    memcpy(&u, &v, 8);
    ds__gguf_enc64(b, u);
    return ds_gguf_writer_set_scalar(w, key, DS_GGUF_F64, b);
}
DS_API ds_status ds_gguf_writer_set_bool(ds_gguf_writer *w, const char *key, int v) {
    uint8_t b = v != 0;
    return ds_gguf_writer_set_scalar(w, key, DS_GGUF_BOOL, &b);
}

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

DS_API ds_status ds_gguf_writer_write(ds_gguf_writer *w, const char *path) {
    ds__gguf_out o;
    uint32_t align;
    size_t n;
    char *tmp;
    ds_status s;
    int ok;
    if (!w || !path) return ds__fail(DS_ERR_INVALID_ARG, "gguf writer: NULL argument");
    if ((s = ds__gguf_writer_alignment(w, &align))) return s;
    n = strlen(path);
    tmp = DS__CAST(char *, ds_alloc(n + 5));
    if (!tmp) return ds__fail(DS_ERR_NO_MEMORY, "gguf writer: out of memory");
    memcpy(tmp, path, n);
    memcpy(tmp + n, ".tmp", 5);
    memset(&o, 0, sizeof o);
    o.f = fopen(tmp, "wb");
    if (!o.f) {
        s = ds__fail(DS_ERR_IO, "gguf writer: cannot create '%s': %s", tmp, strerror(errno));
        ds_free(tmp);
        return s;
    }
    ds__gguf_writer_emit(w, &o, align);
    ok = !o.failed && ds__gguf_sync_file(o.f);
    ok = fclose(o.f) == 0 && ok;
    if (!ok) {
        s = ds__fail(DS_ERR_IO, "gguf writer: writing '%s' failed at byte %llu: %s", tmp, (unsigned long long)o.pos, strerror(errno));
        remove(tmp);
    } else if (!ds__gguf_replace(tmp, path)) {
        s = ds__fail(DS_ERR_IO, "gguf writer: cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
        remove(tmp);
    } else {
        ds__gguf_sync_dir(path);
    }
    ds_free(tmp);
    return s;
}

// >>tokenizer

// >>model

// >>infer

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
    return DS_OK;
}

/* ---- training GEMM ---------------------------------------------------------------------------
   C (M, N) (+)= op(A) (M, K) @ op(B) (K, N), row-major, op = identity or transpose. Every
   product the trainer needs is one call: forward y = x @ W^T, backward dx = dy @ W and
   dW += dy^T @ x. The GotoBLAS loop order: for each KC slice of K and NC block of columns, the
   pool packs that B block once into NR-column strips (shared), then each task packs an MC-row
   block of A into MR-row strips (its own slot) and runs the MR x NR register-tile
   micro-kernel over every strip pair. Each C element is written by one task per K slice in a
   fixed order, so results do not depend on the thread count. bf16 packs K in pairs for
   vdpbf16ps (f32 accumulation). */
#define DS__GEMM_MR 8
#define DS__GEMM_NR 32
#define DS__GEMM_MC 128
#define DS__GEMM_NC 1024
#define DS__GEMM_KC 256

typedef struct ds__gemm_ws {
    ds_pool *pool;
    int n_slots;
    float *pack_a;        /* n_slots * MC * KC floats */
    float *pack_b;        /* KC * NC floats (shared by the tasks of one block) */
    int *busy;            /* slot claimed by a running task (atomic) */
    double seconds;       /* wall time spent in ds__gemm */
    double cpu_seconds;   /* process CPU time spent in ds__gemm */
} ds__gemm_ws;

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

/* one K slice x N block of a product */
typedef struct ds__gemm_args {
    ds__gemm_ws *ws;
    int ta, tb, M, N, K, lda, ldb, ldc, bf16, first;
    const float *A, *B;
    float *C;
    int k0, kc, n0, nc, m_tasks, n_split;
} ds__gemm_args;

/* round to bfloat16, nearest-even (NaN stays NaN) */
static uint16_t ds__tr_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1)) >> 16);
}
static float ds__tr_bf16_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

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
    for (c = 0; c < DS__GEMM_NR; c++) {
        const float *b = g->B + (size_t)(j0 + c) * g->ldb + g->k0;
        if (c >= nr)
            for (k = 0; k < kc; k++) out[k * DS__GEMM_NR + c] = 0.0f;
        else
            for (k = 0; k < kc; k++) out[k * DS__GEMM_NR + c] = b[k];
    }
}

/* f32 strip [k][w] -> bf16 pairs [k/2][w][2], in place (kc rounded up with a zero row) */
static void ds__pack_to_bf16(float *strip, int kc, int w) {
    uint16_t *o = (uint16_t *)(void *)strip;
    int k, c;
    for (k = 0; k < kc; k += 2) {
        const float *r0 = strip + (size_t)k * w, *r1 = r0 + w;
        uint16_t pair[2 * DS__GEMM_NR];
        for (c = 0; c < w; c++) {
            pair[2 * c] = ds__tr_bf16(r0[c]);
            pair[2 * c + 1] = k + 1 < kc ? ds__tr_bf16(r1[c]) : 0;
        }
        memcpy(o + (size_t)k * w, pair, sizeof(uint16_t) * 2 * (size_t)w);
    }
}

/* C tile (MR, NR) (+)= Ap^T Bp over kc: the scalar reference micro-kernel */
static void ds__gemm_micro_scalar(const float *ap, const float *bp, int kc, float *c, int ldc, int add) {
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
static void ds__gemm_micro_bf16_scalar(const float *apf, const float *bpf, int kc, float *c, int ldc, int add) {
    const uint16_t *ap = (const uint16_t *)(const void *)apf, *bp = (const uint16_t *)(const void *)bpf;
    float acc[DS__GEMM_MR * DS__GEMM_NR];
    int p, r, j, np = (kc + 1) / 2;
    memset(acc, 0, sizeof acc);
    for (p = 0; p < np; p++)
        for (r = 0; r < DS__GEMM_MR; r++) {
            float a0 = ds__tr_bf16_f32(ap[(p * DS__GEMM_MR + r) * 2]), a1 = ds__tr_bf16_f32(ap[(p * DS__GEMM_MR + r) * 2 + 1]);
            for (j = 0; j < DS__GEMM_NR; j++) {
                const uint16_t *b = bp + (p * DS__GEMM_NR + j) * 2;
                acc[r * DS__GEMM_NR + j] += a0 * ds__tr_bf16_f32(b[0]) + a1 * ds__tr_bf16_f32(b[1]);
            }
        }
    for (r = 0; r < DS__GEMM_MR; r++)
        for (j = 0; j < DS__GEMM_NR; j++) c[(size_t)r * ldc + j] = (add ? c[(size_t)r * ldc + j] : 0.0f) + acc[r * DS__GEMM_NR + j];
}

#if defined(DS__X86_SIMD)
#define DS__AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,fma")))
#define DS__AVX512BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,fma")))
#define DS__AVX2 __attribute__((target("avx2,fma")))

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
            __m256bh y = _mm512_cvtneps_pbh(_mm512_permutexvar_ps(il, x));
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

typedef void (*ds__micro_fn)(const float *ap, const float *bp, int kc, float *c, int ldc, int add);

static ds__micro_fn ds__gemm_pick(int bf16) {
#if defined(DS__X86_SIMD)
    unsigned f = ds_cpu_features();
    if (bf16) return (f & DS_CPU_AVX512BF16) ? ds__gemm_micro_avx512bf16 : ds__gemm_micro_bf16_scalar;
    if ((f & DS_CPU_AVX512F) && (f & DS_CPU_FMA)) return ds__gemm_micro_avx512;
    if ((f & DS_CPU_AVX2) && (f & DS_CPU_FMA)) return ds__gemm_micro_avx2;
#endif
    return bf16 ? ds__gemm_micro_bf16_scalar : ds__gemm_micro_scalar;
}
static void ds__gemm_to_bf16(float *strip, int kc, int w) {
#if defined(DS__X86_SIMD)
    if ((ds_cpu_features() & DS_CPU_AVX512BF16) && (w % 16 == 0 || w == 8)) {
        ds__pack_to_bf16_avx512(strip, kc, w);
        return;
    }
#endif
    ds__pack_to_bf16(strip, kc, w);
}

/* the strip stride: room for kc rounded up to even (bf16 pairs) */
#define DS__GEMM_KC_PAD (DS__GEMM_KC + 2)

static void ds__gemm_pack_b_task(void *ctx, int t, int n) {
    const ds__gemm_args *g = (const ds__gemm_args *)ctx;
    float *strip = g->ws->pack_b + (size_t)t * DS__GEMM_NR * DS__GEMM_KC_PAD;
    (void)n;
    ds__pack_b(strip, g, g->n0 + t * DS__GEMM_NR);
    if (g->bf16) ds__gemm_to_bf16(strip, g->kc, DS__GEMM_NR);
}

static void ds__gemm_block_task(void *ctx, int t, int n) {
    const ds__gemm_args *g = (const ds__gemm_args *)ctx;
    int slot = ds__slot_acquire(g->ws), mt = t % g->m_tasks, nt = t / g->m_tasks;
    int strips = (g->nc + DS__GEMM_NR - 1) / DS__GEMM_NR;
    int s0 = strips * nt / g->n_split, s1 = strips * (nt + 1) / g->n_split;
    int m0 = mt * DS__GEMM_MC, m1 = DS__MIN(g->M, m0 + DS__GEMM_MC), i, s;
    float *pa = g->ws->pack_a + (size_t)slot * DS__GEMM_MC * DS__GEMM_KC_PAD;
    ds__micro_fn micro = ds__gemm_pick(g->bf16);
    int add = !g->first;
    (void)n;
    for (i = m0; i < m1; i += DS__GEMM_MR) {
        float *a = pa + (size_t)(i - m0) * DS__GEMM_KC_PAD;
        ds__pack_a(a, g, i);
        if (g->bf16) ds__gemm_to_bf16(a, g->kc, DS__GEMM_MR);
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

static ds_status ds__gemm_ws_init(ds__gemm_ws *ws, ds_pool *pool) {
    memset(ws, 0, sizeof *ws);
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

/* ---- reduced-precision emulation ---------------------------------------------------------- */
/* x rounded to the nearest value with `mant` mantissa bits, smallest normal 2^emin (below it
   a fixed quantum, as subnormals): the shared rule of IEEE half and E4M3 */
static float ds__tr_round_mant(float x, int mant, int emin) {
    int e;
    float a = fabsf(x);
    if (a == 0.0f || !(a < FLT_MAX)) return x;
    frexpf(a, &e);            /* a in [2^(e-1), 2^e) */
    if (e - 1 < emin) e = emin + 1;
    return ldexpf(rintf(ldexpf(x, mant - e + 1)), e - 1 - mant);
}
static float ds__tr_round_f16(float x) {
    float r = ds__tr_round_mant(x, 10, -14);
    return fabsf(r) > 65504.0f ? (x > 0 ? INFINITY : -INFINITY) : r;
}
static float ds__tr_round_e4m3(float x) {
    float r = ds__tr_round_mant(x, 3, -6);
    return r > 448.0f ? 448.0f : r < -448.0f ? -448.0f : r;
}

/* dst = src rounded as the compute precision would store it. FP8 scales each (br, bc) block
   by 448 / amax first (DeepSeek-V3's fine-grained scaling) and divides again after the
   rounding; FP16 rounds as is, so values past 65504 become inf (what loss scaling guards). */
static void ds__tr_quantize(float *dst, const float *src, int rows, int cols, int ld, ds_precision p, int br, int bc) {
    int r0, c0, r, c;
    if (p == DS_PREC_FP16) {
        for (r = 0; r < rows; r++)
            for (c = 0; c < cols; c++) dst[(size_t)r * ld + c] = ds__tr_round_f16(src[(size_t)r * ld + c]);
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
                for (c = c0; c < c1; c++) dst[(size_t)r * ld + c] = ds__tr_round_e4m3(src[(size_t)r * ld + c] * s) / s;
        }
}

/* ---- forward / backward pairs -------------------------------------------------------------
   N = B * T rows; every buffer is contiguous row-major. A backward ADDS into parameter
   gradients, and into input gradients where the name says so (residual streams). Row loops
   run on the pool in fixed chunks; parameter-gradient reductions run over columns, so results
   never depend on the number of threads. */
#define DS__ROWS_PER_TASK 16

static void ds__embedding_forward(float *out, const int32_t *tok, const float *wte, int N, int C) {
    int i;
    for (i = 0; i < N; i++) memcpy(out + (size_t)i * C, wte + (size_t)tok[i] * C, sizeof(float) * (size_t)C);
}
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
    ds_pool_run(pool, ds__rmsnorm_dw_cols, &a, DS__MAX(1, DS__MIN(16, C / 16)));
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

static float ds__dot_scalar(const float *a, const float *b, int n) {
    float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += a[i] * b[i];
        s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2];
        s3 += a[i + 3] * b[i + 3];
    }
    for (; i < n; i++) s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}
static void ds__axpy_scalar(float *y, float a, const float *x, int n) {
    int i;
    for (i = 0; i < n; i++) y[i] += a * x[i];
}
#if defined(DS__X86_SIMD)
DS__AVX512 static float ds__dot_avx512(const float *a, const float *b, int n) {
    __m512 s = _mm512_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) s = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s);
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        s = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s);
    }
    return _mm512_reduce_add_ps(s);
}
DS__AVX512 static void ds__axpy_avx512(float *y, float a, const float *x, int n) {
    __m512 av = _mm512_set1_ps(a);
    int i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_fmadd_ps(av, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(y + i, m, _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i)));
    }
}
#endif
/* the attention inner products: picked once per attention call */
typedef struct ds__vec_fns {
    float (*dot)(const float *a, const float *b, int n);
    void (*axpy)(float *y, float a, const float *x, int n);
} ds__vec_fns;
static ds__vec_fns ds__vec_pick(void) {
    ds__vec_fns f;
    f.dot = ds__dot_scalar;
    f.axpy = ds__axpy_scalar;
#if defined(DS__X86_SIMD)
    if (ds_cpu_features() & DS_CPU_AVX512F) {
        f.dot = ds__dot_avx512;
        f.axpy = ds__axpy_avx512;
    }
#endif
    return f;
}

typedef struct ds__attn_args {
    float *y, *probs, *dq, *dk, *dv;
    const float *q, *k, *v, *dy, *yc, *pc;
    int B, T, H, Hkv, hd;
    ds__vec_fns f;
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
                p[j] = scale * a->f.dot(q, a->k + ((size_t)b * a->T + j) * ks + g * a->hd, a->hd);
                mx = DS__MAX(mx, p[j]);
            }
            for (j = 0; j <= t; j++) sum += (p[j] = expf(p[j] - mx));
            memset(y, 0, sizeof(float) * (size_t)a->hd);
            for (j = 0; j <= t; j++) {
                p[j] /= sum;
                a->f.axpy(y, p[j], a->v + ((size_t)b * a->T + j) * ks + g * a->hd, a->hd);
            }
        }
}
static void ds__attention_forward(ds_pool *pool, float *y, float *probs, const float *q, const float *k, const float *v,
                                  int B, int T, int H, int Hkv, int hd) {
    ds__attn_args a;
    memset(&a, 0, sizeof a);
    a.y = y; a.probs = probs; a.q = q; a.k = k; a.v = v; a.B = B; a.T = T; a.H = H; a.Hkv = Hkv; a.hd = hd;
    a.f = ds__vec_pick();
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
            float *dq = a->dq + r * qs + h * a->hd, dyy = a->f.dot(dy, a->yc + r * qs + h * a->hd, a->hd);
            memset(dq, 0, sizeof(float) * (size_t)a->hd);
            for (j = 0; j <= t; j++) {
                size_t rj = ((size_t)b * a->T + j) * ks + g * a->hd;
                float ds = p[j] * (a->f.dot(dy, a->v + rj, a->hd) - dyy) * scale;
                a->f.axpy(dq, ds, a->k + rj, a->hd);
                a->f.axpy(a->dk + rj, ds, q, a->hd);
                a->f.axpy(a->dv + rj, p[j], dy, a->hd);
            }
        }
}
static void ds__attention_backward(ds_pool *pool, float *dq, float *dk, float *dv, const float *dy, const float *y,
                                   const float *probs, const float *q, const float *k, const float *v, int B, int T, int H,
                                   int Hkv, int hd) {
    ds__attn_args a;
    memset(&a, 0, sizeof a);
    a.dq = dq; a.dk = dk; a.dv = dv; a.dy = dy; a.yc = y; a.pc = probs;
    a.q = q; a.k = k; a.v = v; a.B = B; a.T = T; a.H = H; a.Hkv = Hkv; a.hd = hd;
    a.f = ds__vec_pick();
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
    float *logits, *losses;
    const int32_t *targets;
    int N, V;
    float dscale;
} ds__ce_args;
/* logits (N, V) become probabilities; losses[i] = -log p[target] */
static void ds__ce_rows(void *ctx, int t, int n) {
    const ds__ce_args *a = (const ds__ce_args *)ctx;
    int i, j, i1 = DS__MIN(a->N, (t + 1) * DS__ROWS_PER_TASK);
    (void)n;
    for (i = t * DS__ROWS_PER_TASK; i < i1; i++) {
        float *l = a->logits + (size_t)i * a->V, mx = -FLT_MAX;
        double sum = 0.0;
        for (j = 0; j < a->V; j++) mx = DS__MAX(mx, l[j]);
        for (j = 0; j < a->V; j++) sum += (l[j] = expf(l[j] - mx));
        a->losses[i] = (float)(log(sum) - (double)logf(l[a->targets[i]]));
        for (j = 0; j < a->V; j++) l[j] = (float)(l[j] / sum);
    }
}
static void ds__crossentropy_forward(ds_pool *pool, float *logits, float *losses, const int32_t *targets, int N, int V) {
    ds__ce_args a;
    memset(&a, 0, sizeof a);
    a.logits = logits; a.losses = losses; a.targets = targets; a.N = N; a.V = V;
    ds_pool_run(pool, ds__ce_rows, &a, (N + DS__ROWS_PER_TASK - 1) / DS__ROWS_PER_TASK);
}
/* probs (N, V) become dlogits = (p - onehot(target)) * dscale, in place */
static void ds__ce_back_rows(void *ctx, int t, int n) {
    const ds__ce_args *a = (const ds__ce_args *)ctx;
    int i, j, i1 = DS__MIN(a->N, (t + 1) * DS__ROWS_PER_TASK);
    (void)n;
    for (i = t * DS__ROWS_PER_TASK; i < i1; i++) {
        float *l = a->logits + (size_t)i * a->V;
        l[a->targets[i]] -= 1.0f;
        for (j = 0; j < a->V; j++) l[j] *= a->dscale;
    }
}
static void ds__crossentropy_backward(ds_pool *pool, float *probs, const int32_t *targets, int N, int V, float dscale) {
    ds__ce_args a;
    memset(&a, 0, sizeof a);
    a.logits = probs; a.targets = targets; a.N = N; a.V = V; a.dscale = dscale;
    ds_pool_run(pool, ds__ce_back_rows, &a, (N + DS__ROWS_PER_TASK - 1) / DS__ROWS_PER_TASK);
}

/* ---- the trainer -------------------------------------------------------------------------- */
/* offsets of one dense layer's tensors in the parameter buffer */
typedef struct ds__tlayer {
    size_t attn_norm, wq, wk, wv, wo, ffn_norm, wg, wu, wd;
} ds__tlayer;

/* one tensor of the parameter buffer: (rows, cols) = GGUF ne (cols, rows) */
typedef struct ds__ttensor {
    char name[40];
    size_t off;
    int rows, cols;
} ds__ttensor;

/* what one dense layer's backward needs from its forward */
typedef struct ds__tacts {
    float *ln1, *rstd1, *q, *k, *v, *probs, *att, *xmid, *ln2, *rstd2, *g, *u, *h;
} ds__tacts;

#define DS__SCALE_HIST 16

struct ds_trainer {
    ds_model_config mc;
    ds_train_config tc;
    ds_pool *pool;
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
    for (i = 0; i < mc->n_layer; i++)
        if (mc->layers[i].attn != DS_ATTN_DENSE || mc->layers[i].ffn != DS_FFN_DENSE) return ds__fail(DS_ERR_UNSUPPORTED, "train: layer %d: only dense attention and dense FFN layers can be trained so far", i);
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
        DS__T(wq, "attn_q", tr->qd, tr->C)
        DS__T(wk, "attn_k", tr->kvd, tr->C)
        DS__T(wv, "attn_v", tr->kvd, tr->C)
        DS__T(wo, "attn_output", tr->C, tr->qd)
        DS__T(ffn_norm, "ffn_norm", 1, tr->C)
        DS__T(wg, "ffn_gate", tr->F, tr->C)
        DS__T(wu, "ffn_up", tr->F, tr->C)
        DS__T(wd, "ffn_down", tr->C, tr->F)
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
           2 * ds__tr_round16(N * tr->kvd) + ds__tr_round16((size_t)tr->B * tr->H * tr->T * tr->T) + 3 * ds__tr_round16(N * tr->F);
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

DS_API ds_status ds_trainer_create(const ds_model_config *mc, const ds_train_config *tc, ds_trainer **out) {
    ds_trainer *tr;
    ds_pool_config pc;
    ds_status st;
    size_t N, biggest;
    if (!mc || !out) return ds__fail(DS_ERR_INVALID_ARG, "trainer_create: NULL argument");
    *out = NULL;
    tr = DS__CAST(ds_trainer *, ds__calloc(1, sizeof *tr));
    if (!tr) return ds__fail(DS_ERR_NO_MEMORY, "train: out of memory");
    tr->mc = *mc;
    if (tc) tr->tc = *tc;
    ds__train_defaults(&tr->tc);
    if ((st = ds_model_config_check(&tr->mc)) != DS_OK) goto fail;
    if ((unsigned)tr->tc.precision > DS_PREC_FP8) {
        st = ds__fail(DS_ERR_INVALID_ARG, "train: unknown precision %d", (int)tr->tc.precision);
        goto fail;
    }
    tr->C = tr->mc.n_embd; tr->H = tr->mc.n_head; tr->Hkv = tr->mc.n_head_kv; tr->hd = tr->mc.head_dim;
    tr->qd = tr->H * tr->hd; tr->kvd = tr->Hkv * tr->hd; tr->F = tr->mc.n_ff; tr->V = tr->mc.n_vocab;
    tr->L = tr->mc.n_layer; tr->B = tr->tc.batch; tr->T = tr->tc.seq_len; tr->n_rot = tr->mc.n_rot;
    memset(&pc, 0, sizeof pc);
    pc.n_threads = tr->tc.n_threads;
    if ((st = ds_pool_create(&pc, &tr->pool)) != DS_OK) goto fail;
    if ((st = ds__gemm_ws_init(&tr->ws, tr->pool)) != DS_OK) goto fail;
    tr->tensors = DS__CAST(ds__ttensor *, ds__calloc((size_t)tr->L * 9 + 3, sizeof(ds__ttensor)));
    tr->lp = DS__CAST(ds__tlayer *, ds__calloc((size_t)tr->L, sizeof(ds__tlayer)));
    if (!tr->tensors || !tr->lp) {
        st = ds__fail(DS_ERR_NO_MEMORY, "train: out of memory");
        goto fail;
    }
    ds__tr_layout(tr);
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
    ds__tr_init_weights(tr);
    tr->rng = tr->tc.seed;
    tr->scaling = !tr->tc.no_loss_scaling && (tr->tc.precision != DS_PREC_F32 || tr->tc.loss_scale > 0.0f);
    tr->scale = tr->scaling ? (tr->tc.loss_scale > 0.0f ? tr->tc.loss_scale : 65536.0f) : 1.0f;
    *out = tr;
    return DS_OK;
fail:
    ds_trainer_free(tr);
    return st;
}

DS_API void ds_trainer_free(ds_trainer *tr) {
    if (!tr) return;
    ds__gemm_ws_free(&tr->ws);
    ds_pool_destroy(tr->pool);
    ds_free(tr->tensors); ds_free(tr->lp); ds_free(tr->params); ds_free(tr->grads); ds_free(tr->m); ds_free(tr->v);
    ds_free(tr->tok); ds_free(tr->tgt); ds_free(tr->arena); ds_free(tr->x); ds_free(tr->la); ds_free(tr->qa); ds_free(tr->qb);
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
DS_API size_t ds_trainer_activation_bytes(const ds_trainer *tr) { return tr->arena_floats * sizeof(float); }
DS_API double ds_trainer_matmul_seconds(const ds_trainer *tr) { return tr->ws.seconds; }
DS_API double ds_trainer_matmul_cpu_seconds(const ds_trainer *tr) { return tr->ws.cpu_seconds; }
DS_API int ds_trainer_step_count(const ds_trainer *tr) { return tr->step; }
DS_API double ds_trainer_matmul_flops(const ds_trainer *tr) {
    double N = (double)tr->B * tr->T * tr->tc.grad_accum, C = tr->C;
    double per_layer = C * (tr->qd + 2.0 * tr->kvd) + (double)tr->qd * C + 3.0 * C * tr->F;
    return 6.0 * N * (tr->L * per_layer + C * tr->V); /* forward 2, backward 4 flops per MAC */
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
static void ds__tr_matmul(ds_trainer *tr, int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B,
                          int ldb, float *C, int acc, int wa, int wb, int grad_a) {
    ds_precision p = tr->tc.precision;
    int arows = ta ? K : M, acols = ta ? M : K, brows = tb ? N : K, bcols = tb ? K : N;
    if (grad_a && tr->scaling && p == DS_PREC_FP16) tr->amax = DS__MAX(tr->amax, ds__tr_amax(A, (size_t)arows * acols));
    if (p == DS_PREC_F32 || p == DS_PREC_BF16) {
        ds__gemm(&tr->ws, p == DS_PREC_BF16, ta, tb, M, N, K, A, lda, B, ldb, C, N, acc);
        return;
    }
    /* K runs along columns when the operand is not transposed: tiles 1 x 128 there, else 128 x 1 */
    ds__tr_quantize(tr->qa, A, arows, acols, lda, p, wa ? 128 : (ta ? 128 : 1), wa ? 128 : (ta ? 1 : 128));
    ds__tr_quantize(tr->qb, B, brows, bcols, ldb, p, wb ? 128 : (tb ? 1 : 128), wb ? 128 : (tb ? 128 : 1));
    ds__gemm(&tr->ws, 0, ta, tb, M, N, K, tr->qa, lda, tr->qb, ldb, C, N, acc);
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

/* ---- the model ---- */
static void ds__tr_layer_forward(ds_trainer *tr, int l, ds__tacts *a, int B, int T) {
    const ds__tlayer *p = &tr->lp[l];
    const float *W = tr->params;
    int N = B * T;
    float *x = tr->x[l], *xo = tr->x[l + 1];
    ds__rmsnorm_forward(tr->pool, a->ln1, a->rstd1, x, W + p->attn_norm, N, tr->C, tr->mc.norm_eps);
    ds__linear_forward(tr, a->q, a->ln1, W + p->wq, N, tr->qd, tr->C, 0);
    ds__linear_forward(tr, a->k, a->ln1, W + p->wk, N, tr->kvd, tr->C, 0);
    ds__linear_forward(tr, a->v, a->ln1, W + p->wv, N, tr->kvd, tr->C, 0);
    ds__rope_apply(a->q, tr->cs, N, T, tr->H, tr->hd, tr->n_rot, 1.0f);
    ds__rope_apply(a->k, tr->cs, N, T, tr->Hkv, tr->hd, tr->n_rot, 1.0f);
    ds__attention_forward(tr->pool, a->att, a->probs, a->q, a->k, a->v, B, T, tr->H, tr->Hkv, tr->hd);
    memcpy(a->xmid, x, sizeof(float) * (size_t)N * tr->C);
    ds__linear_forward(tr, a->xmid, a->att, W + p->wo, N, tr->C, tr->qd, 1);
    ds__rmsnorm_forward(tr->pool, a->ln2, a->rstd2, a->xmid, W + p->ffn_norm, N, tr->C, tr->mc.norm_eps);
    ds__linear_forward(tr, a->g, a->ln2, W + p->wg, N, tr->F, tr->C, 0);
    ds__linear_forward(tr, a->u, a->ln2, W + p->wu, N, tr->F, tr->C, 0);
    ds__swiglu_forward(tr->pool, a->h, a->g, a->u, (size_t)N * tr->F);
    memcpy(xo, a->xmid, sizeof(float) * (size_t)N * tr->C);
    ds__linear_forward(tr, xo, a->h, W + p->wd, N, tr->C, tr->F, 1);
}

/* tr->dres holds d(layer output) on entry and d(layer input) on return */
static void ds__tr_layer_backward(ds_trainer *tr, int l, const ds__tacts *a, int B, int T) {
    const ds__tlayer *p = &tr->lp[l];
    const float *W = tr->params;
    float *G = tr->grads;
    int N = B * T;
    ds__linear_backward(tr, tr->dh, 0, G + p->wd, tr->dres, a->h, W + p->wd, N, tr->C, tr->F);
    ds__swiglu_backward(tr->pool, tr->dg, tr->du, tr->dh, a->g, a->u, (size_t)N * tr->F);
    ds__linear_backward(tr, tr->dln, 0, G + p->wg, tr->dg, a->ln2, W + p->wg, N, tr->F, tr->C);
    ds__linear_backward(tr, tr->dln, 1, G + p->wu, tr->du, a->ln2, W + p->wu, N, tr->F, tr->C);
    ds__rmsnorm_backward(tr->pool, tr->dres, G + p->ffn_norm, tr->dln, a->xmid, W + p->ffn_norm, a->rstd2, N, tr->C);
    ds__linear_backward(tr, tr->datt, 0, G + p->wo, tr->dres, a->att, W + p->wo, N, tr->C, tr->qd);
    ds__attention_backward(tr->pool, tr->dq, tr->dk, tr->dv, tr->datt, a->att, a->probs, a->q, a->k, a->v, B, T, tr->H, tr->Hkv, tr->hd);
    ds__rope_apply(tr->dq, tr->cs, N, T, tr->H, tr->hd, tr->n_rot, -1.0f);
    ds__rope_apply(tr->dk, tr->cs, N, T, tr->Hkv, tr->hd, tr->n_rot, -1.0f);
    ds__linear_backward(tr, tr->dln, 0, G + p->wq, tr->dq, a->ln1, W + p->wq, N, tr->qd, tr->C);
    ds__linear_backward(tr, tr->dln, 1, G + p->wk, tr->dk, a->ln1, W + p->wk, N, tr->kvd, tr->C);
    ds__linear_backward(tr, tr->dln, 1, G + p->wv, tr->dv, a->ln1, W + p->wv, N, tr->kvd, tr->C);
    ds__rmsnorm_backward(tr->pool, tr->dres, G + p->attn_norm, tr->dln, tr->x[l], W + p->attn_norm, a->rstd1, N, tr->C);
}

static ds__tacts *ds__tr_acts(ds_trainer *tr, int l) { return tr->tc.recompute ? &tr->la[0] : &tr->la[l]; }

/* forward through the loss; tr->logits then holds probabilities. Returns the mean loss. */
static float ds__tr_forward(ds_trainer *tr, const int32_t *tok, const int32_t *tgt, int B, int T) {
    int l, N = B * T, i;
    double sum = 0.0;
    const float *W = tr->params;
    ds__embedding_forward(tr->x[0], tok, W + tr->off_embd, N, tr->C);
    for (l = 0; l < tr->L; l++) ds__tr_layer_forward(tr, l, ds__tr_acts(tr, l), B, T);
    ds__rmsnorm_forward(tr->pool, tr->lnf, tr->rstdf, tr->x[tr->L], W + tr->off_norm, N, tr->C, tr->mc.norm_eps);
    ds__linear_forward(tr, tr->logits, tr->lnf, W + tr->off_out, N, tr->V, tr->C, 0);
    ds__crossentropy_forward(tr->pool, tr->logits, tr->losses, tgt, N, tr->V);
    for (i = 0; i < N; i++) sum += tr->losses[i];
    return (float)(sum / N);
}

static void ds__tr_backward(ds_trainer *tr, const int32_t *tok, const int32_t *tgt, int B, int T, float dscale) {
    int l, N = B * T;
    float *G = tr->grads;
    ds__crossentropy_backward(tr->pool, tr->logits, tgt, N, tr->V, dscale / (float)N);
    ds__linear_backward(tr, tr->dln, 0, G + tr->off_out, tr->logits, tr->lnf, tr->params + tr->off_out, N, tr->V, tr->C);
    memset(tr->dres, 0, sizeof(float) * (size_t)N * tr->C);
    ds__rmsnorm_backward(tr->pool, tr->dres, G + tr->off_norm, tr->dln, tr->x[tr->L], tr->params + tr->off_norm, tr->rstdf, N, tr->C);
    for (l = tr->L - 1; l >= 0; l--) {
        /* the shared activation set still holds the last layer from the forward */
        if (tr->tc.recompute && l < tr->L - 1) ds__tr_layer_forward(tr, l, &tr->la[0], B, T);
        ds__tr_layer_backward(tr, l, ds__tr_acts(tr, l), B, T);
    }
    ds__embedding_backward(G + tr->off_embd, tr->dres, tok, N, tr->C);
}

static ds_status ds__tr_check_batch(const ds_trainer *tr, const int32_t *tok, const int32_t *tgt, int B, int T) {
    int i;
    if (!tok || !tgt || B <= 0 || T <= 0 || B > tr->B || T > tr->T) return ds__fail(DS_ERR_INVALID_ARG, "train: batch %d x %d does not fit the trainer's %d x %d", B, T, tr->B, tr->T);
    for (i = 0; i < B * T; i++)
        if (tok[i] < 0 || tok[i] >= tr->V || tgt[i] < 0 || tgt[i] >= tr->V) return ds__fail(DS_ERR_BOUNDS, "train: token %d at %d is outside the vocabulary of %d", tok[i] < 0 || tok[i] >= tr->V ? tok[i] : tgt[i], i, tr->V);
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
    l = ds__tr_forward(tr, tokens, targets, B, T);
    ds__tr_backward(tr, tokens, targets, B, T, scale);
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

/* header: magic, version 1, bytes per token, n_vocab (u32 each), count (u64), 8 zero bytes */
DS_API ds_status ds_token_shard_write(const char *path, const uint32_t *tokens, uint64_t n, int n_vocab) {
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
        return ds__fail(DS_ERR_IO, "%s: write failed", path);
    }
    fclose(f);
    return DS_OK;
}

typedef struct ds__shard {
    ds_mapped_file file;
    const uint8_t *tok;
    uint64_t n;
    int width, n_vocab;
} ds__shard;

struct ds_train_data {
    ds__shard split[2];   /* train, validation */
};

static ds_status ds__shard_open(ds__shard *s, const char *path) {
    ds_status st = ds_map_file(path, &s->file);
    const uint8_t *p = s->file.data;
    if (st != DS_OK) return st;
    if (s->file.size < DS__SHARD_HEADER || ds__get_u32(p) != DS__SHARD_MAGIC) return ds__fail(DS_ERR_FORMAT, "%s: not a token shard (bad magic)", path);
    if (ds__get_u32(p + 4) != 1) return ds__fail(DS_ERR_UNSUPPORTED, "%s: token shard version %u", path, ds__get_u32(p + 4));
    s->width = (int)ds__get_u32(p + 8);
    s->n_vocab = (int)ds__get_u32(p + 12);
    s->n = (uint64_t)ds__get_u32(p + 16) | (uint64_t)ds__get_u32(p + 20) << 32;
    if (s->width != 2 && s->width != 4) return ds__fail(DS_ERR_FORMAT, "%s: %d bytes per token", path, s->width);
    if (s->n > (s->file.size - DS__SHARD_HEADER) / (uint64_t)s->width) return ds__fail(DS_ERR_BOUNDS, "%s: header says %llu tokens, the file holds %llu", path, (unsigned long long)s->n, (unsigned long long)((s->file.size - DS__SHARD_HEADER) / (uint64_t)s->width));
    s->tok = p + DS__SHARD_HEADER;
    return DS_OK;
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

/* AdamW as PyTorch does it: p *= 1 - lr wd (matrices only), p -= lr mhat / (sqrt(vhat) + eps) */
static void ds__tr_adam_tensor(ds_trainer *tr, const ds__ttensor *t, size_t i0, size_t i1, const ds__adam_args *a) {
    const ds_train_config *tc = &tr->tc;
    float decay = (t->rows > 1 && tc->weight_decay > 0.0f) ? 1.0f - a->lr * tc->weight_decay : 1.0f;
    size_t i;
    for (i = i0; i < i1; i++) {
        float g = tr->grads[i] * a->gscale, mh, vh;
        tr->m[i] = tc->beta1 * tr->m[i] + (1.0f - tc->beta1) * g;
        tr->v[i] = tc->beta2 * tr->v[i] + (1.0f - tc->beta2) * g * g;
        mh = tr->m[i] / a->bc1;
        vh = tr->v[i] / a->bc2;
        tr->params[i] = tr->params[i] * decay - a->lr * mh / (sqrtf(vh) + tc->adam_eps);
    }
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
    overflow = !(norm < 1e300) || !(tr->amax < FLT_MAX) || tr->amax != tr->amax;
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
        st = ds_trainer_grad(tr, tokens + (size_t)k * n, targets + (size_t)k * n, tr->B, tr->T, tr->scale / (float)tr->tc.grad_accum, &l);
        if (st != DS_OK) return st;
        sum += l;
    }
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
#undef DS__W
    return st;
}

static ds_status ds__tr_add_tensors(ds_gguf_writer *w, const ds_trainer *tr, const float *buf, const char *prefix) {
    int i;
    ds_status st;
    for (i = 0; i < tr->n_tensors; i++) {
        const ds__ttensor *t = &tr->tensors[i];
        char name[64];
        int64_t ne[2];
        ne[0] = t->cols;
        ne[1] = t->rows;
        snprintf(name, sizeof name, "%s%s", prefix, t->name);
        if ((st = ds_gguf_writer_add_tensor(w, name, DS_TYPE_F32, t->rows == 1 ? 1 : 2, ne, buf + t->off)) != DS_OK) return st;
    }
    return DS_OK;
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

DS_API ds_status ds_trainer_save_checkpoint(ds_trainer *tr, const char *path) {
    ds_gguf_writer *w;
    ds_status st;
    if (!tr || !path) return ds__fail(DS_ERR_INVALID_ARG, "save_checkpoint: NULL argument");
    if ((st = ds_gguf_writer_create(&w)) != DS_OK) return st;
    st = ds__tr_model_kv(w, &tr->mc);
    if (st == DS_OK) st = ds_gguf_writer_set_str(w, "general.type", "checkpoint");
    if (st == DS_OK) st = ds_gguf_writer_set_u32(w, "llama.tied_output", (uint32_t)tr->mc.tied_output);
    if (st == DS_OK) st = ds__tr_config_kv(w, &tr->tc);
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
    ds_gguf_close(g);
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
        if (gt->type != DS_TYPE_F32 || gt->ne[0] != t->cols || gt->ne[1] != t->rows || gt->nbytes != sizeof(float) * (size_t)t->rows * t->cols)
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
    st = ds__tr_read_configs(g, path, &mc, NULL);
    if (st == DS_OK && (ds_model_config_check(&mc) != DS_OK || mc.n_layer != tr->mc.n_layer || mc.n_embd != tr->mc.n_embd ||
                        mc.n_vocab != tr->mc.n_vocab || mc.n_head != tr->mc.n_head || mc.n_head_kv != tr->mc.n_head_kv ||
                        mc.n_ff != tr->mc.n_ff || mc.head_dim != tr->mc.head_dim || mc.tied_output != tr->mc.tied_output))
        st = ds__fail(DS_ERR_INVALID_ARG, "%s: the checkpoint's model shape differs from the trainer's", path);
    if (st == DS_OK) st = ds__tr_load_state(tr, g, path);
    if (st == DS_OK) st = ds__tr_load_tensors(tr, g, tr->params, "", path);
    if (st == DS_OK) st = ds__tr_load_tensors(tr, g, tr->m, "opt.m.", path);
    if (st == DS_OK) st = ds__tr_load_tensors(tr, g, tr->v, "opt.v.", path);
    ds_gguf_close(g);
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
    if (st == DS_OK) st = ds_gguf_writer_set_str(w, "tokenizer.ggml.pre", "default");
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
    if (!tokenizer && tr->V < 256) return ds__fail(DS_ERR_INVALID_ARG, "save_model: a %d-token model needs a tokenizer", tr->V);
    if ((st = ds_gguf_writer_create(&w)) != DS_OK) return st;
    if (tokenizer) st = ds_gguf_writer_copy_kv(w, tokenizer);
    else st = ds__tr_byte_vocab_kv(w, tr->V);
    if (st == DS_OK) st = ds__tr_model_kv(w, &tr->mc);
    if (st == DS_OK) st = ds_gguf_writer_set_str(w, "general.type", "model");
    if (st == DS_OK) st = ds_gguf_writer_set_str(w, "general.name", "deepseek.h trained llama");
    if (st == DS_OK) st = ds__tr_add_tensors(w, tr, tr->params, "");
    if (st == DS_OK) st = ds_gguf_writer_write(w, path);
    ds_gguf_writer_free(w);
    return st;
}

/* ---- f32 FMA peak ------------------------------------------------------------------------- */
typedef struct ds__peak_args {
    double seconds;
    double *flops, *cpu;
} ds__peak_args;

#if defined(DS__X86_SIMD)
/* 16 independent FMA chains on zmm registers: enough to cover latency x ports */
DS__AVX512 static double ds__peak_avx512(long iters) {
    /* distinct starting values: equal chains would be merged by the compiler */
    __m512 a0 = _mm512_set1_ps(1.0f), a1 = _mm512_set1_ps(1.01f), a2 = _mm512_set1_ps(1.02f), a3 = _mm512_set1_ps(1.03f);
    __m512 a4 = _mm512_set1_ps(1.04f), a5 = _mm512_set1_ps(1.05f), a6 = _mm512_set1_ps(1.06f), a7 = _mm512_set1_ps(1.07f);
    __m512 a8 = _mm512_set1_ps(1.08f), a9 = _mm512_set1_ps(1.09f), a10 = _mm512_set1_ps(1.10f), a11 = _mm512_set1_ps(1.11f);
    __m512 a12 = _mm512_set1_ps(1.12f), a13 = _mm512_set1_ps(1.13f), a14 = _mm512_set1_ps(1.14f), a15 = _mm512_set1_ps(1.15f);
    __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
    long i;
    float out[16];
    for (i = 0; i < iters; i++) {
        a0 = _mm512_fmadd_ps(a0, m, c); a1 = _mm512_fmadd_ps(a1, m, c); a2 = _mm512_fmadd_ps(a2, m, c); a3 = _mm512_fmadd_ps(a3, m, c);
        a4 = _mm512_fmadd_ps(a4, m, c); a5 = _mm512_fmadd_ps(a5, m, c); a6 = _mm512_fmadd_ps(a6, m, c); a7 = _mm512_fmadd_ps(a7, m, c);
        a8 = _mm512_fmadd_ps(a8, m, c); a9 = _mm512_fmadd_ps(a9, m, c); a10 = _mm512_fmadd_ps(a10, m, c); a11 = _mm512_fmadd_ps(a11, m, c);
        a12 = _mm512_fmadd_ps(a12, m, c); a13 = _mm512_fmadd_ps(a13, m, c); a14 = _mm512_fmadd_ps(a14, m, c); a15 = _mm512_fmadd_ps(a15, m, c);
    }
    a0 = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)), _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));
    a8 = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11)), _mm512_add_ps(_mm512_add_ps(a12, a13), _mm512_add_ps(a14, a15)));
    _mm512_storeu_ps(out, _mm512_add_ps(a0, a8));
    return (double)iters * 16 * 16 * 2 + (out[0] > 1e30f ? 1.0 : 0.0);
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
static double ds__peak_scalar(long iters) {
    float a[8] = {1.0f, 1.01f, 1.02f, 1.03f, 1.04f, 1.05f, 1.06f, 1.07f};
    long i;
    int k;
    for (i = 0; i < iters; i++)
        for (k = 0; k < 8; k++) a[k] = a[k] * 0.999999f + 1e-7f;
    return (double)iters * 16 + (a[0] > 1e30f ? 1.0 : 0.0);
}

static void ds__peak_task(void *ctx, int t, int n) {
    ds__peak_args *a = (ds__peak_args *)ctx;
    double t0 = ds_time(), c0 = ds__cpu_time(1), f = 0.0;
    unsigned feat = ds_cpu_features();
    (void)n;
    while (ds_time() - t0 < a->seconds) {
#if defined(DS__X86_SIMD)
        if ((feat & DS_CPU_AVX512F) && (feat & DS_CPU_FMA)) f += ds__peak_avx512(200000);
        else if ((feat & DS_CPU_AVX2) && (feat & DS_CPU_FMA)) f += ds__peak_avx2(200000);
        else
#endif
            f += ds__peak_scalar(200000);
    }
    (void)feat;
    a->flops[t] = f;
    a->cpu[t] = ds__cpu_time(1) - c0;
}

DS_API double ds_cpu_f32_peak_gflops(int n_threads, double seconds, double *per_core) {
    ds_pool *pool = NULL;
    ds_pool_config pc;
    ds__peak_args a;
    double t0, total = 0.0, cpu = 0.0;
    int i, n;
    memset(&pc, 0, sizeof pc);
    pc.n_threads = n_threads;
    if (ds_pool_create(&pc, &pool) != DS_OK) return 0.0;
    n = ds_pool_size(pool);
    a.seconds = seconds > 0.0 ? seconds : 0.5;
    a.flops = DS__CAST(double *, ds__calloc((size_t)n * 2, sizeof(double)));
    if (!a.flops) {
        ds_pool_destroy(pool);
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
    ds_pool_destroy(pool);
    return total / t0 * 1e-9;
}


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
