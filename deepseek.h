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

/* ---- model: llama and qwen2 weights from a GGUF file --------------------------------------
   A ds_model holds the memory-mapped weights (kept in their stored type), the config and the
   tokenizer. It is read-only after ds_model_load: any number of threads and sessions may use
   one model at once. Tensors are checked on load (presence, shape, type); a mismatch fails
   with DS_ERR_FORMAT naming the tensor. */
typedef struct ds_model ds_model;
typedef struct ds_session ds_session;
typedef struct ds_model_params {
    int reserved_;   /* zero-initialise; future options go here */
} ds_model_params;

/* p may be NULL. Errors: DS_ERR_IO, DS_ERR_FORMAT (missing or malformed tensor or key),
   DS_ERR_UNSUPPORTED (another architecture, a tensor type the kernels lack). */
DS_API ds_status ds_model_load(const char *path, const ds_model_params *p, ds_model **out);
DS_API void ds_model_free(ds_model *m);   /* after every session of it is freed */
DS_API const ds_model_config *ds_model_get_config(const ds_model *m);
DS_API const ds_tokenizer *ds_model_tokenizer(const ds_model *m);
/* Bytes of weights read per decoded token (every matrix once, the embedding row aside):
   tokens/s times this over the memory bandwidth says how close decoding runs to the limit. */
DS_API uint64_t ds_model_weight_bytes(const ds_model *m);

// >>api:infer
/* ---- sessions: KV cache and forward ---------------------------------------------------------
   A session holds one sequence's KV cache (f16, like llama.cpp's default) and the scratch of
   the forward, all allocated by ds_session_create: evaluation allocates nothing. A session is
   used by one thread at a time; sessions of the same model may run on different threads. */
typedef struct ds_session_params {
    int n_ctx;        /* 0: min(model's context, 4096) */
    int n_threads;    /* 0: online CPUs (ignored when pool is given) */
    ds_pool *pool;    /* optional: run on this pool (not shared by two running sessions) */
    int n_batch;      /* tokens per forward chunk in prefill (0: 256) */
} ds_session_params;

DS_API ds_status ds_session_create(const ds_model *m, const ds_session_params *p, ds_session **out);
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
typedef struct ds_sampler ds_sampler;

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
   produced: complete UTF-8 only, never a stop string nor a prefix of one still undecided. */
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
/* Does work until max_tokens new tokens came out in this call (0: no limit) or the next piece
   of work would overrun max_seconds (0: no limit), or the generation ends. The prompt is
   evaluated in chunks sized to the time left. One piece of work always runs, so a call overruns
   its budget by at most about one token's decode time. Returns an error status on failure; the
   state says whether to call again. */
DS_API ds_status ds_generator_step(ds_generator *g, int max_tokens, double max_seconds);
DS_API ds_gen_state ds_generator_state(const ds_generator *g);
/* The completion text so far (NUL-terminated, what on_token received). */
DS_API const char *ds_generator_text(const ds_generator *g, size_t *len);
DS_API const ds_generate_result *ds_generator_result(const ds_generator *g);
DS_API void ds_generator_free(ds_generator *g);
/* Whole completion in one call. result may be NULL. */
DS_API ds_status ds_generate(ds_session *s, const char *prompt, const ds_generate_config *cfg, ds_generate_result *result);

/* ---- chat templates --------------------------------------------------------------------------- */
typedef enum ds_chat_template {
    DS_CHAT_AUTO = 0,    /* from the model's tokenizer.chat_template metadata */
    DS_CHAT_CHATML = 1,  /* <|im_start|>role\ncontent<|im_end|>\n (SmolLM2, Qwen2) */
    DS_CHAT_LLAMA3 = 2   /* <|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|> */
} ds_chat_template;
typedef struct ds_chat_message {
    const char *role;      /* "system", "user", "assistant" */
    const char *content;
} ds_chat_message;
/* The template the model's metadata names; DS_ERR_UNSUPPORTED when it matches none we know. */
DS_API ds_status ds_model_chat_template(const ds_model *m, ds_chat_template *out);
/* Formats n messages (and, with add_assistant, the opening of the assistant's turn) into buf
   as NUL-terminated text for a prompt with special-token markup. *len gets the length without
   the NUL; DS_ERR_BOUNDS with *len set to it when cap is too small. m may be NULL unless
   tmpl is DS_CHAT_AUTO. */
DS_API ds_status ds_chat_apply(const ds_model *m, ds_chat_template tmpl, const ds_chat_message *msgs, int n, int add_assistant, char *buf, size_t cap, size_t *len);

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

/* ---- f16 / bf16 conversions -------------------------------------------------------------- */
static DS__MAYBE_UNUSED uint32_t ds__f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static DS__MAYBE_UNUSED float ds__bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* IEEE binary16 -> binary32, exact for every pattern (subnormals normalised, NaN payload kept) */
static DS__MAYBE_UNUSED float ds__f16_to_f32(uint16_t h) {
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
static DS__MAYBE_UNUSED uint16_t ds__f32_to_f16(float f) {
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

static DS__MAYBE_UNUSED float ds__bf16_to_f32(uint16_t b) { return ds__bits_f32((uint32_t)b << 16); }

/* round to nearest even; NaN is quietened so that truncation cannot turn it into inf */
static DS__MAYBE_UNUSED uint16_t ds__f32_to_bf16(float f) {
    uint32_t u = ds__f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

/* ---- quant block layouts (ggml's, byte for byte) ----------------------------------------- */
#define DS__QK 32    /* elements per Q4_0 / Q4_1 / Q8_0 / Q8_1 block */
#define DS__QK_K 256 /* elements per K-quant super-block */
typedef struct { uint16_t d; uint8_t qs[16]; } ds__block_q4_0;          /* x = d * (q - 8) */
typedef struct { uint16_t d, m; uint8_t qs[16]; } ds__block_q4_1;       /* x = d * q + m */
typedef struct { uint16_t d; int8_t qs[32]; } ds__block_q8_0;           /* x = d * q */
typedef struct { uint16_t d, s; int8_t qs[32]; } ds__block_q8_1;        /* s = d * sum(q) */
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qs[128]; } ds__block_q4_k;
typedef struct { uint8_t ql[128], qh[64]; int8_t scales[16]; uint16_t d; } ds__block_q6_k;
typedef struct { float d; int8_t qs[256]; int16_t bsums[16]; } ds__block_q8_k;
/* compile-time size checks: a negative array size fails the build */
typedef char ds__check_block_sizes[(sizeof(ds__block_q4_0) == 18 && sizeof(ds__block_q4_1) == 20 &&
                                    sizeof(ds__block_q8_0) == 34 && sizeof(ds__block_q8_1) == 36 &&
                                    sizeof(ds__block_q4_k) == 144 && sizeof(ds__block_q6_k) == 210 &&
                                    sizeof(ds__block_q8_k) == 292) ? 1 : -1];

/* C's roundf (halves away from zero) without libm's rounding-mode subtleties */
static DS__MAYBE_UNUSED int ds__round_away(float v) {
    float t = (float)(int)v, r = v - t; /* exact: |v| < 2^23 here */
    if (r >= 0.5f) t += 1.0f;
    else if (r <= -0.5f) t -= 1.0f;
    return (int)t;
}
/* nearest integer, halves to even (|v| < 2^22) */
static DS__MAYBE_UNUSED int ds__round_even(float v) {
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

static void ds__quantize_q4_0(const float *x, ds__block_q4_0 *y, int64_t nb) {
    int64_t i;
    int j;
    for (i = 0; i < nb; i++, x += DS__QK) {
        float amax = 0.0f, max = 0.0f, d, id;
        for (j = 0; j < DS__QK; j++) { /* the signed value of largest magnitude (first one) */
            if (fabsf(x[j]) > amax) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        }
        d = max / -8.0f;
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
        float min = FLT_MAX, max = -FLT_MAX, d, id;
        for (j = 0; j < DS__QK; j++) {
            min = DS__MIN(min, x[j]);
            max = DS__MAX(max, x[j]);
        }
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

static void ds__dequantize_q4_k(const ds__block_q4_k *b, float *y, int64_t nb) {
    int64_t i;
    int j, l;
    for (i = 0; i < nb; i++, b++) {
        float d = ds__f16_to_f32(b->d), dmin = ds__f16_to_f32(b->dmin);
        const uint8_t *q = b->qs;
        for (j = 0; j < 8; j += 2, q += 32) { /* 64 values: low nibbles, then high nibbles */
            int sc0, m0, sc1, m1;
            float d0, d1, n0, n1;
            ds__q4_k_scale_min(b->scales, j, &sc0, &m0);
            ds__q4_k_scale_min(b->scales, j + 1, &sc1, &m1);
            d0 = d * (float)sc0; n0 = dmin * (float)m0;
            d1 = d * (float)sc1; n1 = dmin * (float)m1;
            for (l = 0; l < 32; l++) *y++ = d0 * (float)(q[l] & 0xf) - n0;
            for (l = 0; l < 32; l++) *y++ = d1 * (float)(q[l] >> 4) - n1;
        }
    }
}

/* the 6-bit value (minus 32) of element l + 32 * k of a 128-element half (k = 0..3) */
static DS__MAYBE_UNUSED int ds__q6_k_value(const uint8_t *ql, const uint8_t *qh, int l, int k) {
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

/* Bytes of one row of n elements (n a whole number of blocks: callers checked). */
static DS__MAYBE_UNUSED size_t ds__row_bytes(ds_type t, int64_t n) {
    ds__type_traits tr = ds__type_info(t);
    return tr.block_elems ? (size_t)(n / tr.block_elems) * tr.block_bytes : 0;
}

/* dst (n) = src (n elements of type t); n is a whole number of t's blocks */
static DS__MAYBE_UNUSED void ds__dequantize_row(ds_type t, const void *src, float *dst, int64_t n) {
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
    case DS_TYPE_Q4_K: ds__dequantize_q4_k(DS__CAST(const ds__block_q4_k *, src), dst, nb); break;
    case DS_TYPE_Q6_K: ds__dequantize_q6_k(DS__CAST(const ds__block_q6_k *, src), dst, nb); break;
    case DS_TYPE_Q8_K: {
        const ds__block_q8_k *b = DS__CAST(const ds__block_q8_k *, src);
        for (i = 0; i < nb; i++, dst += DS__QK_K)
            for (j = 0; j < DS__QK_K; j++) dst[j] = b[i].d * (float)b[i].qs[j];
        break;
    }
    case DS_TYPE_COUNT_: break;
    }
}

/* dst = src (n floats) stored as type t. Q4_K and Q6_K have no quantizer here (dst untouched). */
static DS__MAYBE_UNUSED void ds__quantize_row(ds_type t, const float *src, void *dst, int64_t n) {
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
    case DS_TYPE_Q8_0: ds__quantize_q8_0(src, DS__CAST(ds__block_q8_0 *, dst), nb); break;
    case DS_TYPE_Q8_1: ds__quantize_q8_1(src, DS__CAST(ds__block_q8_1 *, dst), nb); break;
    case DS_TYPE_Q8_K: ds__quantize_q8_k(src, DS__CAST(ds__block_q8_k *, dst), nb); break;
    case DS_TYPE_Q4_K: case DS_TYPE_Q6_K: case DS_TYPE_COUNT_: break;
    }
}

// >>kernels

/* ---- scalar reference dot products -------------------------------------------------------- */
/* Each returns sum_k w[k] * x[k] over one row of K elements: w in the weight type, x in the
   activation type the weight type pairs with (ds__act_type). Integer sums are exact; the float
   rounding is per block, as llama.cpp does it, so logits agree closely. */
static float ds__dot_q4_0_q8_0_ref(int K, const void *wv, const void *xv) {
    const ds__block_q4_0 *w = DS__CAST(const ds__block_q4_0 *, wv);
    const ds__block_q8_0 *x = DS__CAST(const ds__block_q8_0 *, xv);
    float sum = 0.0f;
    int i, j;
    for (i = 0; i < K / DS__QK; i++) {
        int s = 0;
        for (j = 0; j < 16; j++) s += ((w[i].qs[j] & 0xf) - 8) * x[i].qs[j] + ((w[i].qs[j] >> 4) - 8) * x[i].qs[j + 16];
        sum += (float)s * (ds__f16_to_f32(w[i].d) * ds__f16_to_f32(x[i].d));
    }
    return sum;
}

static float ds__dot_q4_1_q8_1_ref(int K, const void *wv, const void *xv) {
    const ds__block_q4_1 *w = DS__CAST(const ds__block_q4_1 *, wv);
    const ds__block_q8_1 *x = DS__CAST(const ds__block_q8_1 *, xv);
    float sum = 0.0f;
    int i, j;
    for (i = 0; i < K / DS__QK; i++) {
        int s = 0;
        for (j = 0; j < 16; j++) s += (w[i].qs[j] & 0xf) * x[i].qs[j] + (w[i].qs[j] >> 4) * x[i].qs[j + 16];
        /* sum_j (d q_j + m) dx qx_j = d dx sum q qx + m (dx sum qx) */
        sum += (float)s * (ds__f16_to_f32(w[i].d) * ds__f16_to_f32(x[i].d)) + ds__f16_to_f32(w[i].m) * ds__f16_to_f32(x[i].s);
    }
    return sum;
}

static float ds__dot_q8_0_q8_0_ref(int K, const void *wv, const void *xv) {
    const ds__block_q8_0 *w = DS__CAST(const ds__block_q8_0 *, wv);
    const ds__block_q8_0 *x = DS__CAST(const ds__block_q8_0 *, xv);
    float sum = 0.0f;
    int i, j;
    for (i = 0; i < K / DS__QK; i++) {
        int s = 0;
        for (j = 0; j < DS__QK; j++) s += w[i].qs[j] * x[i].qs[j];
        sum += (float)s * (ds__f16_to_f32(w[i].d) * ds__f16_to_f32(x[i].d));
    }
    return sum;
}

static float ds__dot_q4_k_q8_k_ref(int K, const void *wv, const void *xv) {
    const ds__block_q4_k *w = DS__CAST(const ds__block_q4_k *, wv);
    const ds__block_q8_k *x = DS__CAST(const ds__block_q8_k *, xv);
    float sum = 0.0f;
    int i, j, l;
    for (i = 0; i < K / DS__QK_K; i++) {
        int sq = 0, sm = 0; /* sum scale * (q . qx), sum min * (sum of qx) over 8 sub-blocks */
        for (j = 0; j < 8; j++) {
            const uint8_t *q = w[i].qs + 32 * (j / 2);
            const int8_t *a = x[i].qs + 32 * j;
            int sc, mn, s = 0, shift = 4 * (j & 1);
            ds__q4_k_scale_min(w[i].scales, j, &sc, &mn);
            for (l = 0; l < 32; l++) s += ((q[l] >> shift) & 0xf) * a[l];
            sq += sc * s;
            sm += mn * (x[i].bsums[2 * j] + x[i].bsums[2 * j + 1]);
        }
        sum += x[i].d * (ds__f16_to_f32(w[i].d) * (float)sq - ds__f16_to_f32(w[i].dmin) * (float)sm);
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

static float ds__dot_f32_ref(int K, const void *wv, const void *xv) {
    const float *w = DS__CAST(const float *, wv), *x = DS__CAST(const float *, xv);
    float sum = 0.0f;
    int k;
    for (k = 0; k < K; k++) sum += w[k] * x[k];
    return sum;
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
    case DS_TYPE_Q4_0: case DS_TYPE_Q8_0: return DS_TYPE_Q8_0;
    case DS_TYPE_Q4_1: return DS_TYPE_Q8_1;
    case DS_TYPE_Q4_K: case DS_TYPE_Q6_K: return DS_TYPE_Q8_K;
    case DS_TYPE_BF16: return DS_TYPE_BF16;
    default: return DS_TYPE_F32;
    }
}

typedef float (*ds__dot_fn)(int K, const void *w, const void *x);
static ds__dot_fn ds__dot_ref(ds_type wt) {
    switch (wt) {
    case DS_TYPE_Q4_0: return ds__dot_q4_0_q8_0_ref;
    case DS_TYPE_Q4_1: return ds__dot_q4_1_q8_1_ref;
    case DS_TYPE_Q8_0: return ds__dot_q8_0_q8_0_ref;
    case DS_TYPE_Q4_K: return ds__dot_q4_k_q8_k_ref;
    case DS_TYPE_Q6_K: return ds__dot_q6_k_q8_k_ref;
    case DS_TYPE_F16: return ds__dot_f16_f32_ref;
    case DS_TYPE_BF16: return ds__dot_bf16_bf16_ref;
    default: return ds__dot_f32_ref;
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
    const struct ds__kernel_table *kt;
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
static float ds__dot_f32_scalar(const float *a, const float *b, int n) { return ds__dot_f32_ref(n, a, b); }

static void ds__axpy_f32_scalar(float *y, float a, const float *x, int n) {
    int i;
    for (i = 0; i < n; i++) y[i] += a * x[i];
}

static void ds__rmsnorm_scalar(float *y, const float *x, const float *w, int n, float eps) {
    double ss = 0.0;
    float scale;
    int i;
    for (i = 0; i < n; i++) ss += (double)x[i] * x[i];
    scale = (float)(1.0 / sqrt(ss / n + eps));
    for (i = 0; i < n; i++) y[i] = x[i] * scale * w[i];
}

static void ds__softmax_scalar(float *x, int n) {
    float max = -INFINITY, sum = 0.0f, inv;
    int i;
    for (i = 0; i < n; i++) max = DS__MAX(max, x[i]);
    for (i = 0; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += x[i];
    }
    inv = 1.0f / sum;
    for (i = 0; i < n; i++) x[i] *= inv;
}

static void ds__swiglu_scalar(float *y, const float *gate, const float *up, int n) {
    int i;
    for (i = 0; i < n; i++) y[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

/* rotate pairs (x[i*stride_a], x[i*stride_a + off]) by angle i, i < n_pairs, given cos/sin */
static void ds__rope_apply_scalar(float *x, int n_heads, int head_dim, int n_rot, int neox, const float *cs, const float *sn) {
    int h, i, half = n_rot / 2;
    for (h = 0; h < n_heads; h++) {
        float *v = x + (size_t)h * head_dim;
        for (i = 0; i < half; i++) {
            int a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
            float x0 = v[a], x1 = v[b];
            v[a] = x0 * cs[i] - x1 * sn[i];
            v[b] = x0 * sn[i] + x1 * cs[i];
        }
    }
}

/* ---- dispatch ----------------------------------------------------------------------------- */
/* One table per instruction-set level; ds__kt() picks the best the CPU (and mask) allows. */
typedef struct ds__kernel_table {
    const char *name;
    ds__gemm_fn gemm[DS_TYPE_COUNT_];            /* by weight type; NULL: the reference */
    void (*quantize_act)(ds_type at, const float *x, void *dst, int64_t n);
    float (*dot_f32)(const float *a, const float *b, int n);
    void (*axpy_f32)(float *y, float a, const float *x, int n);
    void (*rmsnorm)(float *y, const float *x, const float *w, int n, float eps);
    void (*softmax)(float *x, int n);
    void (*swiglu)(float *y, const float *gate, const float *up, int n);
    void (*rope_apply)(float *x, int n_heads, int head_dim, int n_rot, int neox, const float *cs, const float *sn);
} ds__kernel_table;

static const ds__kernel_table ds__kt_scalar = {
    "scalar", {0}, ds__quantize_row, ds__dot_f32_scalar, ds__axpy_f32_scalar, ds__rmsnorm_scalar,
    ds__softmax_scalar, ds__swiglu_scalar, ds__rope_apply_scalar};

static const ds__kernel_table *ds__kt(void) {
    return &ds__kt_scalar;
}

/* ---- the internal kernel API -------------------------------------------------------------- */
static DS__MAYBE_UNUSED float ds__dot_f32(const float *a, const float *b, int n) { return ds__kt()->dot_f32(a, b, n); }
static DS__MAYBE_UNUSED void ds__axpy_f32(float *y, float a, const float *x, int n) { ds__kt()->axpy_f32(y, a, x, n); }
static DS__MAYBE_UNUSED void ds__rmsnorm(float *y, const float *x, const float *w, int n, float eps) { ds__kt()->rmsnorm(y, x, w, n, eps); }
static DS__MAYBE_UNUSED void ds__softmax(float *x, int n) { ds__kt()->softmax(x, n); }
static DS__MAYBE_UNUSED void ds__swiglu(float *y, const float *gate, const float *up, int n) { ds__kt()->swiglu(y, gate, up, n); }

/* theta_i = pos * base^(-2i/n_rot), computed in double once per call and shared by the heads */
static DS__MAYBE_UNUSED void ds__rope(float *x, int n_heads, int head_dim, int n_rot, int pos, float base, int neox) {
    float cs[256], sn[256];
    int i, half = n_rot / 2;
    if (half > 256) half = 256;
    for (i = 0; i < half; i++) {
        double theta = (double)pos * pow((double)base, -2.0 * i / n_rot);
        cs[i] = (float)cos(theta);
        sn[i] = (float)sin(theta);
    }
    ds__kt()->rope_apply(x, n_heads, head_dim, 2 * half, neox, cs, sn);
}

/* embedding lookup: out (K) = row `row` of a (rows, K) matrix of type t */
static DS__MAYBE_UNUSED void ds__get_row(ds_type t, const void *matrix, int64_t row, int K, float *out) {
    ds__dequantize_row(t, DS__CAST(const uint8_t *, matrix) + (size_t)row * ds__row_bytes(t, K), out, K);
}

static DS__MAYBE_UNUSED size_t ds__matmul_wsize(ds_type wt, int T, int K) {
    ds_type at = ds__act_type(wt);
    if (at == DS_TYPE_F32) return 0;
    return (size_t)T * ((ds__row_bytes(at, K) + 63) & ~(size_t)63);
}

static void ds__matmul_quantize_task(void *ctx, int t, int n) {
    const ds__mm *m = DS__CAST(const ds__mm *, ctx);
    (void)n;
    m->kt->quantize_act(ds__act_type(m->wt), m->x + (size_t)t * m->K, (void *)(m->xa + (size_t)t * m->xa_row), m->K);
}

static void ds__matmul_task(void *ctx, int i, int n) {
    const ds__mm *m = DS__CAST(const ds__mm *, ctx);
    int tt = i / m->n_tiles, nt = i % m->n_tiles;
    int t0 = tt * m->t_chunk, n0 = nt * m->n_chunk;
    ds__gemm_fn g = m->kt->gemm[m->wt] ? m->kt->gemm[m->wt] : ds__gemm_ref;
    (void)n;
    g(m, t0, DS__MIN(m->T, t0 + m->t_chunk), n0, DS__MIN(m->N, n0 + m->n_chunk));
}

/* y (T, N) = x (T, K) @ w^T with w (N, K) of type wt. wsbuf: ds__matmul_wsize bytes, 64-aligned.
   Row chunks are small enough that two or more threads balance, large enough that a task
   streams a few KB of weights. */
static DS__MAYBE_UNUSED void ds__matmul(ds_pool *pool, float *y, const float *x, int T, const void *w, ds_type wt, int N, int K, void *wsbuf) {
    ds__mm m;
    ds_type at = ds__act_type(wt);
    int n_threads = ds_pool_size(pool);
    memset(&m, 0, sizeof m);
    m.kt = ds__kt();
    m.T = T; m.N = N; m.K = K; m.wt = wt;
    m.w = DS__CAST(const uint8_t *, w);
    m.w_row = ds__row_bytes(wt, K);
    if (at == DS_TYPE_F32) {
        m.xa = DS__CAST(const uint8_t *, (const void *)x);
        m.xa_row = (size_t)K * sizeof(float);
    } else {
        m.xa = DS__CAST(const uint8_t *, wsbuf);
        m.xa_row = (ds__row_bytes(at, K) + 63) & ~(size_t)63;
        m.x = x;
        if (T > 1) ds_pool_run(pool, ds__matmul_quantize_task, &m, T);
        else ds__matmul_quantize_task(&m, 0, 1);
    }
    m.y = y;
    m.x = x;
    m.t_chunk = T >= 8 ? 8 : T;
    m.n_chunk = 16;
    while (m.n_chunk < 256 && (N + 2 * m.n_chunk - 1) / (2 * m.n_chunk) * ((T + m.t_chunk - 1) / m.t_chunk) >= 8 * n_threads) m.n_chunk *= 2;
    m.n_tiles = (N + m.n_chunk - 1) / m.n_chunk;
    ds_pool_run(pool, ds__matmul_task, &m, m.n_tiles * ((T + m.t_chunk - 1) / m.t_chunk));
}

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

// >>tokenizer

// >>model
/* A weight matrix as stored: rows of cols elements of type (ggml's ne[1] rows of ne[0]). */
typedef struct ds__mat {
    const void *data;
    ds_type type;
    int64_t rows, cols;
} ds__mat;

typedef struct ds__layer {
    const float *attn_norm, *ffn_norm;              /* (C) */
    ds__mat wq, wk, wv, wo;                          /* (H*D, C) (Hkv*D, C) (Hkv*D, C) (C, H*D) */
    const float *bq, *bk, *bv;                       /* qwen2 only, else NULL */
    ds__mat w_gate, w_up, w_down;                    /* (F, C) (F, C) (C, F) */
} ds__layer;

struct ds_model {
    ds_gguf *gguf;
    ds_tokenizer *tok;
    ds_model_config cfg;
    ds__mat tok_embd, output;                        /* (V, C) each; the same when tied */
    const float *output_norm;
    ds__layer *layers;
    int chat;                                        /* a ds_chat_template, or -1 unknown */
    uint64_t weight_bytes;
};

/* <arch>.<key> as a positive int; absent keys keep *out when optional */
static ds_status ds__model_int_key(const ds_gguf *g, const char *arch, const char *key, int optional, int *out) {
    char name[128];
    uint32_t v;
    ds_status s;
    snprintf(name, sizeof name, "%s.%s", arch, key);
    s = ds_gguf_get_u32(g, name, &v);
    if (s == DS_ERR_NOT_FOUND && optional) return DS_OK;
    if (s == DS_ERR_NOT_FOUND) return ds__fail(DS_ERR_FORMAT, "model: key '%s' is missing", name);
    if (s != DS_OK || v == 0 || v > (1u << 24)) return ds__fail(DS_ERR_FORMAT, "model: key '%s' is not an integer in [1, 2^24]", name);
    *out = (int)v;
    return DS_OK;
}

static ds_status ds__model_float_key(const ds_gguf *g, const char *arch, const char *key, float *out) {
    char name[128];
    float v;
    ds_status s;
    snprintf(name, sizeof name, "%s.%s", arch, key);
    s = ds_gguf_get_f32(g, name, &v);
    if (s == DS_ERR_NOT_FOUND) return DS_OK;
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
    if (!((arch.len == 5 && !memcmp(arch.ptr, "llama", 5)) || (arch.len == 5 && !memcmp(arch.ptr, "qwen2", 5))))
        return ds__fail(DS_ERR_UNSUPPORTED, "model: architecture '%.*s' is not supported (llama, qwen2)", (int)DS__MIN(arch.len, 64), arch.ptr);
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
    return DS_OK;
}

/* Types the matmul kernels take as weights. */
static int ds__model_weight_type_ok(ds_type t) {
    return t == DS_TYPE_F32 || t == DS_TYPE_F16 || t == DS_TYPE_BF16 || t == DS_TYPE_Q4_0 || t == DS_TYPE_Q4_1 ||
           t == DS_TYPE_Q8_0 || t == DS_TYPE_Q4_K || t == DS_TYPE_Q6_K;
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
    DS__LAYER_T(wq, "attn_q.weight", QD, C);
    DS__LAYER_T(wk, "attn_k.weight", KD, C);
    DS__LAYER_T(wv, "attn_v.weight", KD, C);
    DS__LAYER_T(wo, "attn_output.weight", C, QD);
    DS__LAYER_V(bq, "attn_q.bias", QD, !c->qkv_bias);
    DS__LAYER_V(bk, "attn_k.bias", KD, !c->qkv_bias);
    DS__LAYER_V(bv, "attn_v.bias", KD, !c->qkv_bias);
    DS__LAYER_V(ffn_norm, "ffn_norm.weight", C, 0);
    DS__LAYER_T(w_gate, "ffn_gate.weight", F, C);
    DS__LAYER_T(w_up, "ffn_up.weight", F, C);
    DS__LAYER_T(w_down, "ffn_down.weight", C, F);
#undef DS__LAYER_T
#undef DS__LAYER_V
    return DS_OK;
}

static int ds__str_has(ds_str s, const char *needle) {
    size_t n = strlen(needle), i;
    for (i = 0; i + n <= s.len; i++)
        if (!memcmp(s.ptr + i, needle, n)) return 1;
    return 0;
}

/* The chat template from tokenizer.chat_template, else from the special tokens present. */
static int ds__model_detect_chat(const ds_model *m) {
    ds_str t;
    if (ds_gguf_get_str(m->gguf, "tokenizer.chat_template", &t) == DS_OK) {
        if (ds__str_has(t, "<|im_start|>")) return DS_CHAT_CHATML;
        if (ds__str_has(t, "<|start_header_id|>")) return DS_CHAT_LLAMA3;
        return -1;
    }
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
    for (il = 0; il < c->n_layer; il++) {
        c->layers[il].attn = DS_ATTN_DENSE;
        c->layers[il].ffn = DS_FFN_DENSE;
        if ((s = ds__model_load_layer(m, il, &m->layers[il])) != DS_OK) return s;
    }
    return DS_OK;
}

DS_API ds_status ds_model_load(const char *path, const ds_model_params *p, ds_model **out) {
    ds_model *m;
    ds_status s;
    (void)p;
    if (!path || !out) return ds__fail(DS_ERR_INVALID_ARG, "model: NULL argument");
    *out = NULL;
    m = DS__CAST(ds_model *, ds__calloc(1, sizeof *m));
    if (!m) return ds__fail(DS_ERR_NO_MEMORY, "model: out of memory");
    if ((s = ds_gguf_open(path, &m->gguf)) == DS_OK && (s = ds__model_read_config(m->gguf, &m->cfg)) == DS_OK &&
        (s = ds__model_load_weights(m)) == DS_OK && (s = ds_tokenizer_from_gguf(m->gguf, &m->tok)) == DS_OK) {
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

DS_API void ds_model_free(ds_model *m) {
    if (!m) return;
    ds_tokenizer_free(m->tok);
    ds_gguf_close(m->gguf);
    ds_free(m->layers);
    ds_free(m);
}

DS_API const ds_model_config *ds_model_get_config(const ds_model *m) { return m ? &m->cfg : NULL; }
DS_API const ds_tokenizer *ds_model_tokenizer(const ds_model *m) { return m ? m->tok : NULL; }
DS_API uint64_t ds_model_weight_bytes(const ds_model *m) { return m ? m->weight_bytes : 0; }

// >>infer
/* ---- session ------------------------------------------------------------------------------- */
#define DS__ATTN_BLOCK 64    /* keys converted from f16 and scored at a time */
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
    void *ws;                     /* matmul workspace (activations quantized) */
    float *attn_scratch;          /* (n_attn_tasks, attn_stride) */
    size_t attn_stride;
    int n_attn_tasks;
};

static size_t ds__session_ws_size(const ds_model *m, int T) {
    const ds_model_config *c = &m->cfg;
    size_t w = ds__matmul_wsize(m->output.type, T, c->n_embd);
    const ds__layer *L = m->layers;
    int il;
    for (il = 0; il < c->n_layer; il++, L++) {
        w = DS__MAX(w, ds__matmul_wsize(L->wq.type, T, c->n_embd));
        w = DS__MAX(w, ds__matmul_wsize(L->wk.type, T, c->n_embd));
        w = DS__MAX(w, ds__matmul_wsize(L->wv.type, T, c->n_embd));
        w = DS__MAX(w, ds__matmul_wsize(L->wo.type, T, c->n_head * c->head_dim));
        w = DS__MAX(w, ds__matmul_wsize(L->w_gate.type, T, c->n_embd));
        w = DS__MAX(w, ds__matmul_wsize(L->w_up.type, T, c->n_embd));
        w = DS__MAX(w, ds__matmul_wsize(L->w_down.type, T, c->n_ff));
    }
    return w;
}

/* one attention task's scratch: K and V blocks in f32, block scores, and for each query row
   of a tile its running max, sum and output accumulator */
static size_t ds__attn_stride(const ds_model_config *c) {
    size_t G = (size_t)(c->n_head / c->n_head_kv), rows = DS__ATTN_TILE * G, D = (size_t)c->head_dim;
    return 2 * DS__ATTN_BLOCK * D + DS__ATTN_BLOCK + rows * (D + 2);
}

static ds_status ds__session_alloc(ds_session *s) {
    const ds_model_config *c = &s->m->cfg;
    size_t T = (size_t)s->n_batch, C = (size_t)c->n_embd, QD = (size_t)c->n_head * c->head_dim;
    size_t KD = (size_t)c->n_head_kv * c->head_dim, F = (size_t)c->n_ff;
    size_t cache = (size_t)c->n_layer * KD * (size_t)s->n_ctx;
    s->tokens = DS__CAST(int32_t *, ds_alloc((size_t)s->n_ctx * sizeof(int32_t)));
    /* not zeroed: pages the context never reaches stay untouched, so unused context costs no RAM */
    s->k_cache = DS__CAST(uint16_t *, ds_alloc(cache * sizeof(uint16_t)));
    s->v_cache = DS__CAST(uint16_t *, ds_alloc(cache * sizeof(uint16_t)));
    s->x = DS__CAST(float *, ds__calloc(T * C, sizeof(float)));
    s->xn = DS__CAST(float *, ds__calloc(T * C, sizeof(float)));
    s->tmp = DS__CAST(float *, ds__calloc(T * C, sizeof(float)));
    s->q = DS__CAST(float *, ds__calloc(T * QD, sizeof(float)));
    s->att = DS__CAST(float *, ds__calloc(T * QD, sizeof(float)));
    s->k = DS__CAST(float *, ds__calloc(T * KD, sizeof(float)));
    s->v = DS__CAST(float *, ds__calloc(T * KD, sizeof(float)));
    s->gate = DS__CAST(float *, ds__calloc(T * F, sizeof(float)));
    s->up = DS__CAST(float *, ds__calloc(T * F, sizeof(float)));
    s->ws = ds_alloc(ds__session_ws_size(s->m, s->n_batch));
    s->n_attn_tasks = 4 * ds_pool_size(s->pool);
    s->attn_stride = ds__attn_stride(c);
    s->attn_scratch = DS__CAST(float *, ds__calloc((size_t)s->n_attn_tasks * s->attn_stride, sizeof(float)));
    if (!s->tokens || !s->k_cache || !s->v_cache || !s->x || !s->xn || !s->tmp || !s->q || !s->att || !s->k || !s->v ||
        !s->gate || !s->up || !s->ws || !s->attn_scratch)
        return ds__fail(DS_ERR_NO_MEMORY, "session: out of memory (n_ctx %d, n_batch %d)", s->n_ctx, s->n_batch);
    return DS_OK;
}

DS_API ds_status ds_session_create(const ds_model *m, const ds_session_params *p, ds_session **out) {
    ds_session_params sp;
    ds_session *s;
    ds_status st;
    if (!m || !out) return ds__fail(DS_ERR_INVALID_ARG, "session: NULL argument");
    *out = NULL;
    memset(&sp, 0, sizeof sp);
    if (p) sp = *p;
    if (sp.n_ctx < 0 || sp.n_batch < 0 || sp.n_threads < 0) return ds__fail(DS_ERR_INVALID_ARG, "session: negative n_ctx, n_batch or n_threads");
    s = DS__CAST(ds_session *, ds__calloc(1, sizeof *s));
    if (!s) return ds__fail(DS_ERR_NO_MEMORY, "session: out of memory");
    s->m = m;
    s->n_ctx = sp.n_ctx ? sp.n_ctx : DS__MIN(m->cfg.n_ctx, 4096);
    s->n_batch = DS__MIN(sp.n_batch ? sp.n_batch : 512, s->n_ctx);
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
    if (s->own_pool) ds_pool_destroy(s->pool);
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
    ds_free(s->ws);
    ds_free(s->attn_scratch);
    ds_free(s);
}

DS_API int ds_session_pos(const ds_session *s) { return s ? s->pos : 0; }
DS_API int ds_session_n_ctx(const ds_session *s) { return s ? s->n_ctx : 0; }
DS_API const int32_t *ds_session_tokens(const ds_session *s) { return s ? s->tokens : NULL; }
DS_API const ds_model *ds_session_model(const ds_session *s) { return s ? s->m : NULL; }

DS_API ds_status ds_session_rewind(ds_session *s, int pos) {
    if (!s) return ds__fail(DS_ERR_INVALID_ARG, "session: NULL argument");
    if (pos < 0 || pos > s->pos) return ds__fail(DS_ERR_INVALID_ARG, "session: cannot rewind to %d (the cache holds %d tokens)", pos, s->pos);
    s->pos = pos;
    return DS_OK;
}

/* ---- attention ------------------------------------------------------------------------------
   Causal, grouped-query attention over the f16 cache, flash-style: keys and values are read a
   block at a time, each query keeps a running max m, sum l and accumulator a, rescaled as the
   max grows, so memory is O(block) whatever the context. A work item is one KV head and a tile
   of query tokens: its G = H / Hkv query heads and tile tokens share each converted block. */
typedef struct ds__attn_job {
    ds_session *s;
    int layer, T, pos0;
} ds__attn_job;

static void ds__attn_f16_block(float *dst, const uint16_t *src, int n) {
    int i;
    for (i = 0; i < n; i++) dst[i] = ds__f16_to_f32(src[i]);
}

/* online-softmax update of one query row with the scores sc[0..n) of a block */
static void ds__attn_row_update(float *acc, float *mx, float *sum, const float *sc, const float *vb, int n, int D) {
    float m_new = *mx, corr;
    int j;
    for (j = 0; j < n; j++) m_new = DS__MAX(m_new, sc[j]);
    corr = expf(*mx - m_new);   /* 0 on the first block, when *mx is -inf */
    if (corr != 1.0f) {
        for (j = 0; j < D; j++) acc[j] *= corr;
        *sum *= corr;
    }
    for (j = 0; j < n; j++) {
        float p = expf(sc[j] - m_new);
        *sum += p;
        ds__axpy_f32(acc, p, vb + (size_t)j * D, D);
    }
    *mx = m_new;
}

static void ds__attn_tile(const ds__attn_job *job, int hk, int t0, int t1, float *scratch) {
    const ds_session *s = job->s;
    const ds_model_config *c = &s->m->cfg;
    int D = c->head_dim, H = c->n_head, G = c->n_head / c->n_head_kv, B = DS__ATTN_BLOCK;
    int rows = (t1 - t0) * G, kend = job->pos0 + t1, r, j0, t, g;
    size_t head = ((size_t)job->layer * c->n_head_kv + hk) * (size_t)s->n_ctx * D;
    const uint16_t *kc = s->k_cache + head, *vc = s->v_cache + head;
    float *kb = scratch, *vb = kb + (size_t)B * D, *sc = vb + (size_t)B * D, *acc = sc + B, *mx = acc + (size_t)rows * D, *sum = mx + rows;
    float scale = 1.0f / sqrtf((float)D);
    for (r = 0; r < rows; r++) {
        memset(acc + (size_t)r * D, 0, (size_t)D * sizeof(float));
        mx[r] = -INFINITY;
        sum[r] = 0;
    }
    for (j0 = 0; j0 < kend; j0 += B) {
        int nb = DS__MIN(B, kend - j0);
        ds__attn_f16_block(kb, kc + (size_t)j0 * D, nb * D);
        ds__attn_f16_block(vb, vc + (size_t)j0 * D, nb * D);
        for (t = t0; t < t1; t++) {
            int nv = DS__MIN(nb, job->pos0 + t + 1 - j0);   /* keys this token may see */
            if (nv <= 0) continue;
            for (g = 0; g < G; g++) {
                const float *q = s->q + (size_t)t * H * D + (size_t)(hk * G + g) * D;
                int j;
                r = (t - t0) * G + g;
                for (j = 0; j < nv; j++) sc[j] = ds__dot_f32(q, kb + (size_t)j * D, D) * scale;
                ds__attn_row_update(acc + (size_t)r * D, mx + r, sum + r, sc, vb, nv, D);
            }
        }
    }
    for (t = t0; t < t1; t++)
        for (g = 0; g < G; g++) {
            float *o = s->att + (size_t)t * H * D + (size_t)(hk * G + g) * D, inv;
            int d;
            r = (t - t0) * G + g;
            inv = 1.0f / sum[r];
            for (d = 0; d < D; d++) o[d] = acc[(size_t)r * D + d] * inv;
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

/* ---- forward ------------------------------------------------------------------------------- */
static void ds__store_kv(ds_session *s, int layer, int T, int pos0) {
    const ds_model_config *c = &s->m->cfg;
    int D = c->head_dim, Hkv = c->n_head_kv, t, h, d;
    for (h = 0; h < Hkv; h++) {
        size_t head = ((size_t)layer * Hkv + h) * (size_t)s->n_ctx * D;
        for (t = 0; t < T; t++) {
            uint16_t *kd = s->k_cache + head + (size_t)(pos0 + t) * D, *vd = s->v_cache + head + (size_t)(pos0 + t) * D;
            const float *ks = s->k + ((size_t)t * Hkv + h) * D, *vs = s->v + ((size_t)t * Hkv + h) * D;
            for (d = 0; d < D; d++) {
                kd[d] = ds__f32_to_f16(ks[d]);
                vd[d] = ds__f32_to_f16(vs[d]);
            }
        }
    }
}

static void ds__add_bias(float *y, const float *b, int T, int n) {
    int t;
    if (!b) return;
    for (t = 0; t < T; t++) ds__axpy_f32(y + (size_t)t * n, 1.0f, b, n);
}

static void ds__matmul_w(ds_session *s, float *y, const float *x, int T, const ds__mat *w) {
    ds__matmul(s->pool, y, x, T, w->data, w->type, (int)w->rows, (int)w->cols, s->ws);
}

/* x (T, C) += attention block of layer il over tokens at pos0.. */
static void ds__attention_block(ds_session *s, const ds__layer *L, int il, int T, int pos0) {
    const ds_model_config *c = &s->m->cfg;
    int C = c->n_embd, QD = c->n_head * c->head_dim, KD = c->n_head_kv * c->head_dim, t;
    for (t = 0; t < T; t++) ds__rmsnorm(s->xn + (size_t)t * C, s->x + (size_t)t * C, L->attn_norm, C, c->norm_eps);
    ds__matmul_w(s, s->q, s->xn, T, &L->wq);
    ds__matmul_w(s, s->k, s->xn, T, &L->wk);
    ds__matmul_w(s, s->v, s->xn, T, &L->wv);
    ds__add_bias(s->q, L->bq, T, QD);
    ds__add_bias(s->k, L->bk, T, KD);
    ds__add_bias(s->v, L->bv, T, KD);
    for (t = 0; t < T; t++) {
        ds__rope(s->q + (size_t)t * QD, c->n_head, c->head_dim, c->n_rot, pos0 + t, c->rope_base, c->rope_neox);
        ds__rope(s->k + (size_t)t * KD, c->n_head_kv, c->head_dim, c->n_rot, pos0 + t, c->rope_base, c->rope_neox);
    }
    ds__store_kv(s, il, T, pos0);
    ds__attention(s, il, T, pos0);
    ds__matmul_w(s, s->tmp, s->att, T, &L->wo);
    ds__axpy_f32(s->x, 1.0f, s->tmp, T * C);
}

/* x (T, C) += SwiGLU feed-forward of layer L */
static void ds__ffn_block(ds_session *s, const ds__layer *L, int T) {
    const ds_model_config *c = &s->m->cfg;
    int C = c->n_embd, t;
    for (t = 0; t < T; t++) ds__rmsnorm(s->xn + (size_t)t * C, s->x + (size_t)t * C, L->ffn_norm, C, c->norm_eps);
    ds__matmul_w(s, s->gate, s->xn, T, &L->w_gate);
    ds__matmul_w(s, s->up, s->xn, T, &L->w_up);
    ds__swiglu(s->gate, s->gate, s->up, T * c->n_ff);
    ds__matmul_w(s, s->tmp, s->gate, T, &L->w_down);
    ds__axpy_f32(s->x, 1.0f, s->tmp, T * C);
}

/* Runs T <= n_batch tokens at s->pos; logits gets the last row's (all = 0) or every row's
   (all = 1) n_vocab logits, or nothing when NULL. */
static void ds__forward(ds_session *s, const int32_t *tokens, int T, float *logits, int all) {
    const ds_model *m = s->m;
    const ds_model_config *c = &m->cfg;
    int C = c->n_embd, t, il, first;
    for (t = 0; t < T; t++) ds__get_row(m->tok_embd.type, m->tok_embd.data, tokens[t], C, s->x + (size_t)t * C);
    for (il = 0; il < c->n_layer; il++) {
        ds__attention_block(s, &m->layers[il], il, T, s->pos);
        ds__ffn_block(s, &m->layers[il], T);
    }
    memcpy(s->tokens + s->pos, tokens, (size_t)T * sizeof(int32_t));
    s->pos += T;
    if (!logits) return;
    first = all ? 0 : T - 1;
    for (t = first; t < T; t++) ds__rmsnorm(s->xn + (size_t)t * C, s->x + (size_t)t * C, m->output_norm, C, c->norm_eps);
    ds__matmul_w(s, logits, s->xn + (size_t)first * C, T - first, &m->output);
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

/* the tokens to evaluate after reusing what the session already holds */
static ds_status ds__gen_prepare_prompt(ds_generator *g, const char *prompt) {
    ds_session *s = g->s;
    const ds_tokenizer *tok = s->m->tok;
    size_t len = strlen(prompt);
    int flags = g->cfg.plain_text ? 0 : DS_TOKENIZE_PARSE_SPECIAL, n = 0, keep = 0;
    ds_status st;
    if (!g->cfg.append) keep = 0;
    else keep = s->pos;
    if (keep == 0 && ds_tokenizer_add_bos(tok)) flags |= DS_TOKENIZE_ADD_BOS;
    g->prompt = DS__CAST(int32_t *, ds_alloc((len + 4) * sizeof(int32_t)));
    if (!g->prompt) return ds__fail(DS_ERR_NO_MEMORY, "generate: out of memory");
    if ((st = ds_tokenize(tok, prompt, len, flags, g->prompt, (int)(len + 4), &n)) != DS_OK) return st;
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

DS_API ds_status ds_generator_create(ds_session *s, const char *prompt, const ds_generate_config *cfg, ds_generator **out) {
    ds_generator *g;
    ds_status st;
    int i;
    if (!s || !prompt || !out) return ds__fail(DS_ERR_INVALID_ARG, "generate: NULL argument");
    *out = NULL;
    g = DS__CAST(ds_generator *, ds__calloc(1, sizeof *g));
    if (!g) return ds__fail(DS_ERR_NO_MEMORY, "generate: out of memory");
    g->s = s;
    if (cfg) g->cfg = *cfg;
    if (g->cfg.n_stop < 0 || (g->cfg.n_stop > 0 && !g->cfg.stop)) st = ds__fail(DS_ERR_INVALID_ARG, "generate: n_stop %d with stop %p", g->cfg.n_stop, (const void *)g->cfg.stop);
    else if ((st = ds__gen_prepare_prompt(g, prompt)) == DS_OK && (st = ds_sampler_create(&g->cfg.sampler, s->m->cfg.n_vocab, &g->smp)) == DS_OK) {
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
    if (cancel && g->res.state == DS_GEN_RUNNING) g->res.state = DS_GEN_CANCELLED;
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
        if (g->emitted < g->len) ds__gen_emit(g, -1, g->len);
        g->res.gen_seconds += ds_time() - t0;
        return DS_OK;
    }
    ds_sampler_accept(g->smp, id);
    if ((st = ds_detok_stream_push(tok, &g->detok, id, piece, sizeof piece, &n)) != DS_OK) return st;
    if ((st = ds__gen_append(g, piece, n)) != DS_OK) return st;
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
            if (max_seconds > 0) { /* as many tokens as the time left allows (4 to measure) */
                int fit = g->t_prefill_tok > 0 ? (int)(left / g->t_prefill_tok) : 4;
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

/* ---- chat templates ------------------------------------------------------------------------ */
DS_API ds_status ds_model_chat_template(const ds_model *m, ds_chat_template *out) {
    if (!m || !out) return ds__fail(DS_ERR_INVALID_ARG, "chat: NULL argument");
    if (m->chat < 0) return ds__fail(DS_ERR_UNSUPPORTED, "chat: the model's chat template is none we know (ChatML, Llama-3)");
    *out = (ds_chat_template)m->chat;
    return DS_OK;
}

/* appends n bytes if they fit (keeping room for the NUL); *pos counts them either way */
static void ds__put(char *buf, size_t cap, size_t *pos, const char *s, size_t n) {
    if (*pos + n < cap) memcpy(buf + *pos, s, n);
    *pos += n;
}
static void ds__puts(char *buf, size_t cap, size_t *pos, const char *s) { ds__put(buf, cap, pos, s, strlen(s)); }

/* Llama-3's template trims the content */
static void ds__put_trimmed(char *buf, size_t cap, size_t *pos, const char *s) {
    size_t n = strlen(s);
    while (n && strchr(" \t\r\n", s[n - 1])) n--;
    while (n && strchr(" \t\r\n", *s)) s++, n--;
    ds__put(buf, cap, pos, s, n);
}

DS_API ds_status ds_chat_apply(const ds_model *m, ds_chat_template tmpl, const ds_chat_message *msgs, int n, int add_assistant, char *buf, size_t cap, size_t *len) {
    size_t pos = 0;
    ds_status st;
    int i;
    if ((n > 0 && !msgs) || n < 0 || !len || (cap && !buf)) return ds__fail(DS_ERR_INVALID_ARG, "chat: bad arguments");
    if (tmpl == DS_CHAT_AUTO && (st = ds_model_chat_template(m, &tmpl)) != DS_OK) return st;
    if (tmpl != DS_CHAT_CHATML && tmpl != DS_CHAT_LLAMA3) return ds__fail(DS_ERR_INVALID_ARG, "chat: unknown template %d", (int)tmpl);
    for (i = 0; i < n; i++) {
        if (!msgs[i].role || !msgs[i].content) return ds__fail(DS_ERR_INVALID_ARG, "chat: message %d has a NULL role or content", i);
        if (tmpl == DS_CHAT_CHATML) {
            ds__puts(buf, cap, &pos, "<|im_start|>");
            ds__puts(buf, cap, &pos, msgs[i].role);
            ds__puts(buf, cap, &pos, "\n");
            ds__puts(buf, cap, &pos, msgs[i].content);
            ds__puts(buf, cap, &pos, "<|im_end|>\n");
        } else {
            ds__puts(buf, cap, &pos, "<|start_header_id|>");
            ds__puts(buf, cap, &pos, msgs[i].role);
            ds__puts(buf, cap, &pos, "<|end_header_id|>\n\n");
            ds__put_trimmed(buf, cap, &pos, msgs[i].content);
            ds__puts(buf, cap, &pos, "<|eot_id|>");
        }
    }
    if (add_assistant) ds__puts(buf, cap, &pos, tmpl == DS_CHAT_CHATML ? "<|im_start|>assistant\n" : "<|start_header_id|>assistant<|end_header_id|>\n\n");
    *len = pos;
    if (pos >= cap) return ds__fail(DS_ERR_BOUNDS, "chat: the text needs %zu bytes and a NUL, the buffer has %zu", pos, cap);
    buf[pos] = 0;
    return DS_OK;
}

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
