/* shrink plugin ABI: the C boundary between the host and a stage plugin.
 *
 * This header is the hourglass waist. Everything that crosses between a plugin built by
 * a third party (with its own compiler and standard library) and the host is declared
 * here, in C: fixed-width integers, plain structs, function pointers, no exceptions, no
 * C++ types. Plugin authors normally write against <shrink/plugin.hpp>, the header-only
 * C++ layer on top of this one.
 *
 * Rules that keep the ABI stable (docs/plugins.md, "How the ABI grows"):
 *  - every table that may grow starts with a size (or version and size) field; members
 *    are only ever appended, never reordered or removed. Each table's first released size
 *    is SHRINK_<TABLE>_SIZE_1 below; its released members are frozen (the host checks
 *    every offset with static_assert). A reader accepts a table at least that large and
 *    reads only the members its struct_size covers; arrays of such tables are strided by
 *    the first element's struct_size. A plugin built against an older abi.h therefore
 *    loads in a newer host, and a newer plugin checks host->struct_size before calling
 *    an appended service. SHRINK_ABI_VERSION changes only if a released layout must
 *    change, and the host refuses a plugin built for another version;
 *  - structs without a size field (shrink_param_decl, shrink_fact_decl, shrink_layer_info,
 *    shrink_tensor_info, shrink_quant_tensor, shrink_forward_event, ...) never change: new
 *    information comes through new, appended calls;
 *  - functions return shrink_status (0 = ok); on failure they write a NUL-terminated
 *    message into the caller's shrink_error and leave out-parameters untouched;
 *  - strings are UTF-8, NUL-terminated, owned by whoever passed them; a pointer received
 *    from the other side stays valid only for the duration of the call unless stated.
 */
#ifndef SHRINK_ABI_H
#define SHRINK_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The ABI this header describes. \since 1 */
#define SHRINK_ABI_VERSION 1u

/** Name of the single exported entry point: a variable holding a shrink_plugin_entry_fn
 *  (what BOOST_DLL_ALIAS exports; a C plugin writes
 *  `const shrink_plugin_entry_fn shrink_plugin_entry = my_entry;` with default visibility). */
#define SHRINK_PLUGIN_ENTRY_NAME "shrink_plugin_entry"

typedef int32_t shrink_status; /* 0 = ok, anything else = failed, see shrink_error */
#define SHRINK_OK 0
#define SHRINK_FAILED 1

#define SHRINK_ERROR_CAPACITY 1024
/** Caller-owned buffer a callee fills with a message when it fails. */
typedef struct shrink_error {
    char message[SHRINK_ERROR_CAPACITY];
} shrink_error;

/* ---- parameters ------------------------------------------------------------------ */

typedef enum shrink_param_type {
    SHRINK_PARAM_INT = 1,    /* int64; range [min_value, max_value] */
    SHRINK_PARAM_FLOAT = 2,  /* double; range [min_value, max_value] */
    SHRINK_PARAM_BOOL = 3,
    SHRINK_PARAM_CHOICE = 4, /* one of `choices`, '|' separated */
    SHRINK_PARAM_LAYERS = 5  /* layer names of the model; `text` holds them comma separated,
                                "" = every layer the stage works on. The first LAYERS param of
                                a stage is its scope: its contract applies to those layers. */
} shrink_param_type;

/** Declaration of one stage parameter, readable without running the stage. */
typedef struct shrink_param_decl {
    const char* name;
    int32_t type;              /* shrink_param_type */
    const char* default_value; /* text, parsed like a recipe value; NULL = required */
    double min_value;          /* INT/FLOAT: inclusive bounds */
    double max_value;
    const char* choices;       /* CHOICE: "a|b|c" */
    const char* doc;           /* one line */
} shrink_param_decl;

/** A resolved parameter value: the host has checked type and range. */
typedef struct shrink_param_value {
    const char* name;
    int32_t type;
    int64_t int_value;     /* INT, BOOL (0/1) */
    double float_value;    /* FLOAT */
    const char* text;      /* CHOICE; also the value as written for every type */
} shrink_param_value;

typedef struct shrink_params {
    uint32_t count;
    const shrink_param_value* values;
} shrink_params;

/* ---- contracts ------------------------------------------------------------------- */

typedef enum shrink_fact_relation {
    SHRINK_FACT_REQUIRES = 1,
    SHRINK_FACT_PROVIDES = 2,
    SHRINK_FACT_INVALIDATES = 3,
    SHRINK_FACT_FORBIDS = 4 /* the stage refuses to run where the fact holds (e.g. a pruner on
                               quantized weights); leave it out to declare the stage works there */
} shrink_fact_relation;

/** One contract entry. `when_param` NULL: always; "NAME": the entry holds only when that
 *  parameter is set (non-zero number, true, or a choice other than "none"); "NAME=VALUE":
 *  only when the parameter's value is VALUE (a choice: "activation_bits=8"). */
typedef struct shrink_fact_decl {
    int32_t relation; /* shrink_fact_relation */
    const char* fact; /* vocabulary in docs/plugins.md, e.g. "activation_ranges" */
    const char* when_param;
} shrink_fact_decl;

#define SHRINK_DEVICE_CPU 1u
#define SHRINK_DEVICE_CUDA 2u

/* ---- the model, as the host shows it to a running stage ---------------------------- */

/** A layer of the model graph. Pointers stay valid until the model is next changed. */
typedef struct shrink_layer_info {
    const char* name;
    const char* op;       /* "linear", "conv", "relu", "max_pool", ... (docs/model-format.md) */
    const char* weight;   /* tensor name, NULL when the op has none */
    const char* bias;
    uint64_t in_features; /* linear and conv: the weight read as out_features rows of */
    uint64_t out_features;/* in_features (a conv's [out, in/group, kh, kw]: in/group*kh*kw) */
} shrink_layer_info;

/* Element types a tensor is stored in (tensor_dtype). tensor_read_f32 and
 * tensor_read_rows_f32 widen every one of them to float: bf16 is the high half of a float's
 * bits; f16 is IEEE binary16; i8/i4 are a quantized tensor's codes (decoded with its scales). */
#define SHRINK_DTYPE_F32 1
#define SHRINK_DTYPE_F16 2
#define SHRINK_DTYPE_BF16 3
#define SHRINK_DTYPE_I8 4
#define SHRINK_DTYPE_I4 5
/* Element types artifacts take besides F32 (artifact_put). */
#define SHRINK_DTYPE_F64 6
#define SHRINK_DTYPE_I32 7
#define SHRINK_DTYPE_I64 8
#define SHRINK_DTYPE_U8 9

#define SHRINK_ARTIFACT_MAX_RANK 4

/** An artifact's type and shape: a per-layer array a stage measured (an input Hessian
 *  X^T X as F64 [in, in], a histogram, index arrays), kept with the model state along the
 *  path in a file of its own. Grows like the other tables. */
typedef struct shrink_artifact_info {
    uint32_t struct_size;
    int32_t dtype;   /* SHRINK_DTYPE_F64, F32, I64, I32 or U8 */
    uint32_t rank;   /* 1..SHRINK_ARTIFACT_MAX_RANK */
    uint64_t shape[SHRINK_ARTIFACT_MAX_RANK];
    uint64_t bytes;  /* element size times the elements; the host fills it in */
} shrink_artifact_info;

#define SHRINK_ENCODING_QUANTIZED 1u
#define SHRINK_ENCODING_SPARSE 2u

typedef struct shrink_tensor_info {
    uint32_t ndim;
    int64_t shape[8];       /* logical shape */
    uint32_t encoding;      /* SHRINK_ENCODING_* bits */
    int32_t bits;           /* bits per stored value: 8 or 4 when quantized, else 32 (f32) or 16 (f16, bf16) */
    uint64_t stored_bytes;  /* bytes this tensor takes in a written model */
} shrink_tensor_info;

/** Quantized values for one weight tensor, submitted by a quantizer. The host packs and
 *  stores them; a weight W decodes as scale * (q - zero_point) per group. */
typedef struct shrink_quant_tensor {
    int32_t bits;            /* 4 or 8 */
    int32_t symmetric;       /* 1: zero points are all 0 and may be NULL */
    uint64_t group_size;     /* elements of a row sharing one scale; 0 = one scale for all */
    const int8_t* values;    /* one per element, row-major, in [-2^(bits-1), 2^(bits-1)-1] */
    uint64_t value_count;
    const float* scales;     /* rows * ceil(cols / group_size), or 1 when group_size = 0 */
    const int8_t* zero_points; /* as many as scales, or NULL when symmetric */
    uint64_t scale_count;
} shrink_quant_tensor;

/** QLoRA's 4-bit NormalFloat values (its appendix E; bitsandbytes' table), ascending, as
 *  an initializer: what an "nf4" code c stands for is entry c + 8 times its group's scale. */
#define SHRINK_NF4_TABLE                                                                                  \
    {-1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f, -0.28444138169288635f,     \
     -0.18477343022823334f, -0.09105003625154495f, 0.0f, 0.07958029955625534f, 0.16093020141124725f,     \
     0.24611230194568634f, 0.33791524171829224f, 0.44070982933044434f, 0.5626170039176941f,              \
     0.7229568362236023f, 1.0f}

/** A tensor in a table encoding (tensor_write_table): each code stands for an entry of a
 *  table of 2^bits values instead of a step of the integer grid. "nf4": QLoRA's 4-bit
 *  NormalFloat table (the host's own), times an absmax scale per group of a row;
 *  "kmeans": the stage's table, one for the tensor or one per row, no scales. */
typedef struct shrink_table_tensor {
    uint32_t struct_size;    /* sizeof(shrink_table_tensor) */
    int32_t bits;            /* the codes' container: 4 or 8 */
    const char* kind;        /* "nf4" or "kmeans" */
    uint64_t group_size;     /* nf4: elements of a row per scale */
    uint64_t books;          /* kmeans: 1, or one table per row */
    int32_t double_quant;    /* nf4: the host stores the scales as int8 codes around their mean, an
                                f32 step per 256 of them (QLoRA's double quantization) */
    const int8_t* codes;     /* one per element, row-major, in [-2^(bits-1), 2^(bits-1)-1]: entry code + 2^(bits-1) */
    uint64_t code_count;
    const float* scales;     /* nf4: rows * ceil(cols / group_size); kmeans: NULL */
    uint64_t scale_count;
    const float* table;      /* kmeans: books x 2^bits values; nf4: NULL */
    uint64_t table_count;
} shrink_table_tensor;

typedef enum shrink_split {
    SHRINK_SPLIT_CALIBRATION = 1,
    SHRINK_SPLIT_EVALUATION = 2,
    SHRINK_SPLIT_TRAINING = 3 /* what the host's train() reads */
} shrink_split;

typedef enum shrink_forward_event_kind {
    SHRINK_FORWARD_LAYER_INPUT = 1, /* before a linear or conv layer: its input activations */
    SHRINK_FORWARD_OUTPUT = 2,      /* after a batch: model outputs and labels */
    SHRINK_FORWARD_BLOCK_END = 3    /* forward_blocks: every sample went through block `layer`
                                       (its name, "layers.3"); rows = its index, cols = the
                                       number of blocks */
} shrink_forward_event_kind;

/* Text data (a language model): a sample is a window of tokens and a batch holds whole
 * windows. Each row is a token position, in window order: LAYER_INPUT rows are that
 * position's activations, OUTPUT rows its logits (cols = the vocabulary), and its label
 * the window's next token, or -1 at the window's last position, which predicts nothing
 * (so -1 also marks where a window ends). */

typedef struct shrink_forward_event {
    int32_t kind;
    const char* layer;      /* LAYER_INPUT */
    const float* data;      /* rows x cols, row-major (a conv's input: cols = C*H*W) */
    uint64_t rows;
    uint64_t cols;
    const int32_t* labels;  /* OUTPUT: rows labels */
    double seconds;         /* OUTPUT: wall time of the batch's forward pass */
} shrink_forward_event;

typedef shrink_status (*shrink_forward_observer)(void* user, const shrink_forward_event* event,
                                                 shrink_error* error);

/** One tensor's values for a forward_trial pass: `count` floats, its element count. */
typedef struct shrink_trial_tensor {
    const char* name;
    const float* values;
    uint64_t count;
} shrink_trial_tensor;

/* ---- training, a host service (distillers, fine-tuners, quantization-aware training) ---- */

typedef enum shrink_optimizer { SHRINK_OPTIMIZER_SGD = 1, SHRINK_OPTIMIZER_ADAMW = 2 } shrink_optimizer;
typedef enum shrink_schedule {
    SHRINK_SCHEDULE_CONSTANT = 1,
    SHRINK_SCHEDULE_COSINE = 2, /* from learning_rate down to 0 over the run */
    SHRINK_SCHEDULE_STEP = 3    /* times step_gamma every step_epochs epochs */
} shrink_schedule;

/** What the forward pass reads in place of a weight during training, e.g. its fake-quantized
 *  form: `out` gets `count` floats computed from `value` (the weight read as rows x cols). The
 *  gradient reaches the weight unchanged (the straight-through estimator). */
typedef shrink_status (*shrink_weight_transform)(void* user, const char* tensor, const float* value, float* out,
                                                 uint64_t rows, uint64_t cols, shrink_error* error);

/** How to train. Zero-initialize, set struct_size = sizeof(shrink_train_spec), fill what matters. */
typedef struct shrink_train_spec {
    uint32_t struct_size;
    int32_t epochs;            /* passes over the training split, >= 1 */
    uint64_t batch;            /* samples per step, >= 1 */
    uint64_t max_samples;      /* 0 = the whole training split */
    int32_t optimizer;         /* shrink_optimizer */
    double learning_rate;
    double momentum;           /* SGD */
    double weight_decay;       /* linear and conv weights only; decoupled for AdamW, L2 for SGD */
    int32_t schedule;          /* shrink_schedule */
    int32_t step_epochs;
    double step_gamma;
    /* Loss: (1 - distill_alpha) * cross-entropy + distill_alpha * T^2 * KL(softmax(teacher / T) ||
       softmax(student / T)) with T = temperature, the teacher being the model state's kept teacher. */
    double distill_alpha;
    double temperature;
    /* Hidden-state matching with the teacher: "student:teacher,..." naming layers (their outputs)
       or values, of equal width, each adding hidden_weight * mean squared difference. NULL or "" = none. */
    const char* hidden_pairs;
    double hidden_weight;
    /* 1: batchnorm normalizes by batch statistics and is folded afterwards (a model trained from
       scratch, such as a fresh student); 0: batchnorm stays the model's fixed affine map. */
    int32_t batch_statistics;
    /* Weights the transform applies to ("" or NULL = none), comma separated tensor names. */
    const char* transform_tensors;
    shrink_weight_transform transform;
    void* transform_user;
} shrink_train_spec;

typedef struct shrink_train_report {
    uint32_t struct_size;
    uint64_t steps;
    double first_epoch_loss; /* mean loss per sample */
    double last_epoch_loss;
} shrink_train_report;

/* ---- the CUDA device, a host service for stages that run on SHRINK_DEVICE_CUDA ---------- */

/** The GPU a stage runs on, owned by the host: one stream, library handles bound to it, and
 *  the only way bytes cross between host and device memory. A plugin launches its own
 *  kernels on `stream` (built against the same CUDA major version as the host: the handles
 *  are the CUDA runtime's, cuBLAS's and cuSOLVER's own types). Every call is ordered on
 *  `stream`; download and synchronize wait for it and report a failed kernel. */
typedef struct shrink_cuda {
    uint32_t struct_size;
    void* ctx;        /* pass back as the first argument */
    int32_t ordinal;  /* the device number, as in cudaSetDevice (current during the stage) */
    void* stream;     /* cudaStream_t */
    void* cublas;     /* cublasHandle_t, its stream set to `stream` */
    void* cusolver;   /* cusolverDnHandle_t, its stream set to `stream` */
    /** Device memory, freed by release (or by the host when the stage ends). */
    shrink_status (*alloc)(void* ctx, uint64_t bytes, void** out, shrink_error* error);
    void (*release)(void* ctx, void* device_ptr);
    shrink_status (*upload)(void* ctx, void* device_dst, const void* host_src, uint64_t bytes, shrink_error* error);
    shrink_status (*download)(void* ctx, void* host_dst, const void* device_src, uint64_t bytes, shrink_error* error);
    shrink_status (*synchronize)(void* ctx, shrink_error* error);
} shrink_cuda;

#define SHRINK_LOG_DEBUG 0
#define SHRINK_LOG_INFO 1
#define SHRINK_LOG_WARNING 2

/** What the host offers a running stage. Valid only during that stage's run call. */
typedef struct shrink_host {
    uint32_t struct_size;
    void* ctx; /* pass back as the first argument */
    uint64_t seed; /* this stage's seed, derived from the recipe seed and the stage id */
    uint32_t device; /* SHRINK_DEVICE_* the stage runs on */

    void (*log)(void* ctx, int32_t level, const char* message);
    void (*progress)(void* ctx, const char* what, uint64_t done, uint64_t total);

    uint32_t (*layer_count)(void* ctx);
    shrink_status (*layer_get)(void* ctx, uint32_t index, shrink_layer_info* out, shrink_error* error);
    shrink_status (*tensor_info)(void* ctx, const char* name, shrink_tensor_info* out, shrink_error* error);
    /** Dense float values (decoded if quantized; zeros where pruned). */
    shrink_status (*tensor_read_f32)(void* ctx, const char* name, float* dst, uint64_t count, shrink_error* error);
    /** 1 = kept, 0 = pruned; a dense tensor reads as all ones. */
    shrink_status (*tensor_read_mask)(void* ctx, const char* name, uint8_t* dst, uint64_t count, shrink_error* error);
    /** Replace values with dense floats; `mask` non-NULL marks the tensor sparse (values
     *  must be 0 where mask is 0). Clears any quantization. */
    shrink_status (*tensor_write_f32)(void* ctx, const char* name, const float* src, uint64_t count,
                                      const uint8_t* mask, shrink_error* error);
    /** Replace values with a quantized form. A sparse tensor stays sparse; its pruned
     *  positions must decode to exactly 0. */
    shrink_status (*tensor_write_quant)(void* ctx, const char* name, const shrink_quant_tensor* q, shrink_error* error);
    /** Replace linear or conv layer `layer` (W read as out x in) by two: first (rank x in,
     *  no bias; a conv keeps its window and takes rank output channels) then second
     *  (out x rank, the old bias; a conv's second is a 1x1 conv). */
    shrink_status (*layer_factorize)(void* ctx, const char* layer, uint64_t rank, const float* first,
                                     const float* second, shrink_error* error);
    /** Static 8-bit quantization of a layer's input activations: x -> scale*(round(x/scale)+zp - zp). */
    shrink_status (*layer_set_input_quant)(void* ctx, const char* layer, float scale, int32_t zero_point,
                                           shrink_error* error);
    /** Per-layer statistics that travel with the model state (e.g. activation ranges). */
    shrink_status (*stat_put)(void* ctx, const char* layer, const char* key, const float* values, uint64_t count,
                              shrink_error* error);
    /** Copies up to `capacity` values; `*count` gets the stored count (0 when absent). */
    shrink_status (*stat_get)(void* ctx, const char* layer, const char* key, float* dst, uint64_t capacity,
                              uint64_t* count, shrink_error* error);
    /** Runs up to max_samples (0 = all) of a split through the model in batches. */
    shrink_status (*forward)(void* ctx, int32_t split, uint64_t max_samples, int32_t capture_layer_inputs,
                             shrink_forward_observer observer, void* user, shrink_error* error);
    /** Bytes the model takes when written. */
    uint64_t (*model_size_bytes)(void* ctx);
    /** A named result of this stage (an evaluator's metric, a count); appears in the report. */
    shrink_status (*result_put)(void* ctx, const char* key, double value, shrink_error* error);

    /* Appended; present when struct_size covers them. */

    /** Trains the model on the training split. Sparse weights keep their masks (pruned weights
     *  stay 0); quantized weights stay fixed; batches are shuffled from this stage's seed. */
    shrink_status (*train)(void* ctx, const shrink_train_spec* spec, shrink_train_report* report, shrink_error* error);
    /** Distillation's first step: the current model becomes the kept teacher, and a student with
     *  the same graph becomes the current model: every linear and conv layer but the last keeps
     *  width_scale of its outputs (at least 1), with fresh weights drawn from this stage's seed. */
    shrink_status (*make_student)(void* ctx, double width_scale, shrink_error* error);
    /** The stage's GPU when device is SHRINK_DEVICE_CUDA, else NULL. The host's forward()
     *  runs on it too. */
    const shrink_cuda* cuda;

    /* Appended after the first release (SHRINK_HOST_SIZE_1): check struct_size first. */

    /** The element type `name` is stored in (SHRINK_DTYPE_*): a dense tensor's float type,
     *  or a quantized tensor's code type. */
    shrink_status (*tensor_dtype)(void* ctx, const char* name, int32_t* dtype, shrink_error* error);
    /** Rows [first_row, first_row + row_count) of a tensor read as a matrix (rows = its first
     *  dimension, cols = the rest), decoded to floats as tensor_read_f32 does: row_count * cols
     *  floats into dst. A stage works through a weight larger than it wants to copy a block
     *  of rows at a time. */
    shrink_status (*tensor_read_rows_f32)(void* ctx, const char* name, uint64_t first_row, uint64_t row_count, float* dst,
                                          shrink_error* error);
    /** Stores an artifact of layer `layer` under `key` (info->bytes of data, row-major),
     *  replacing one of the same key. It backs the per-layer facts the stage provides and is
     *  forgotten when a later stage makes them stale; a stage that provides none cannot store. */
    shrink_status (*artifact_put)(void* ctx, const char* layer, const char* key, const shrink_artifact_info* info,
                                  const void* data, shrink_error* error);
    /** Describes an artifact into *out (up to out->struct_size); *found = 0 when there is none. */
    shrink_status (*artifact_find)(void* ctx, const char* layer, const char* key, shrink_artifact_info* out,
                                   int32_t* found, shrink_error* error);
    /** Copies bytes [offset, offset + count) of an artifact to dst: a stage reads a large one
     *  a block of rows at a time. */
    shrink_status (*artifact_read)(void* ctx, const char* layer, const char* key, uint64_t offset, uint64_t count,
                                   void* dst, shrink_error* error);
    /** Text data: the bytes of text each token id of the split's tokenizer stands for (0 for
     *  an id it leaves unused). *vocab gets the number of ids; min(capacity, *vocab) values
     *  go to dst (dst may be NULL with capacity 0 to ask the size). Fails when the split is
     *  not text. Bits per byte need it. */
    shrink_status (*token_bytes)(void* ctx, int32_t split, uint32_t* dst, uint64_t capacity, uint64_t* vocab,
                                 shrink_error* error);
    /** Layer `index`'s place in the graph: the name of the value it writes into *output, and
     *  of the values it reads into inputs (its main input first; binary ops, concat and
     *  attention read more), at most `capacity` of them, their number into *count. A value
     *  is the output of the one layer that writes it, or the model's input. The names stay
     *  valid while the stage runs. A stage that folds a scale into the layer before another
     *  (SmoothQuant, AWQ) finds it here. */
    shrink_status (*layer_io)(void* ctx, uint32_t index, const char** output, const char** inputs, uint32_t capacity,
                              uint32_t* count, shrink_error* error);
    /** Runs up to max_samples (0 = all) of a split through the model one block at a time, on
     *  the CPU: a decoder block (the layers named "layers.N.*"), or a layer of a model without
     *  blocks, sees every sample before the next block starts; the value between blocks is
     *  held for all samples (the planner counts it: SHRINK_RESOURCE_BLOCK_STREAM). Events:
     *  LAYER_INPUT for the block's linear layers, a batch at a time, then BLOCK_END. During
     *  BLOCK_END the stage may write weights (tensor_write_*; nothing that changes the graph):
     *  the samples then go through the block as written before the next block sees them,
     *  so each block is calibrated on the outputs of the blocks before it as the stage left
     *  them (GPTQ's sequential calibration). Models with conv layers are refused. */
    shrink_status (*forward_blocks)(void* ctx, int32_t split, uint64_t max_samples, shrink_forward_observer observer,
                                    void* user, shrink_error* error);
    /** Replace values with a table encoding (shrink_table_tensor). A sparse tensor stays
     *  sparse (its pruned positions decode to 0 whatever their codes). */
    shrink_status (*tensor_write_table)(void* ctx, const char* name, const shrink_table_tensor* t, shrink_error* error);
    /** Runs a split like forward (OUTPUT events only) with the values of `count` tensors
     *  replaced for this one pass: afterwards the model is as it was, bit for bit, whatever
     *  the tensors' encodings. A stage measures what a change would do without making it
     *  (analyzer.sensitivity quantizes one layer at a time); an evaluator may call it too. */
    shrink_status (*forward_trial)(void* ctx, int32_t split, uint64_t max_samples, const shrink_trial_tensor* tensors,
                                   uint32_t count, shrink_forward_observer observer, void* user, shrink_error* error);
    /** Dynamic 8-bit quantization of a linear layer's input, per token: each row x (a token,
     *  a sample) becomes s*clamp(round(x/s), -127, 127) with s = max|x| / 127, computed when
     *  the model runs (SmoothQuant's per-token activations). Replaces a static one. */
    shrink_status (*layer_set_input_quant_per_token)(void* ctx, const char* layer, shrink_error* error);
} shrink_host;

/* ---- stage types and the plugin descriptor ----------------------------------------- */

/** What the planner knows of the model before any weight is read: the input of a stage's
 *  memory_bytes. Grows like the other tables; read only what struct_size covers. */
typedef struct shrink_model_outline {
    uint32_t struct_size;
    uint32_t matrix_layers;        /* linear and conv layers */
    uint64_t parameters;           /* weight and bias elements of the whole model */
    uint64_t largest_weight;       /* elements of the largest linear or conv weight */
    uint64_t widest_input;         /* the largest in_features of a linear or conv layer */
    uint64_t activation_floats;    /* floats of every activation of one sample */
    uint64_t calibration_samples;  /* samples the recipe's calibration data holds; 0 = none */
} shrink_model_outline;

typedef struct shrink_stage_type {
    uint32_t struct_size;
    const char* name; /* "<kind>.<name>", kind one of calibrator analyzer transform quantizer pruner factorizer distiller finetuner evaluator */
    const char* doc;
    const shrink_param_decl* params;
    uint32_t param_count;
    const shrink_fact_decl* facts;
    uint32_t fact_count;
    uint32_t devices; /* SHRINK_DEVICE_* bits */
    const void* state; /* passed back to the functions below */
    /** Expected relative drop of the metric (0.01 = 1%) for these params. */
    shrink_status (*expected_drop)(const void* state, const shrink_params* params, double* drop, shrink_error* error);
    shrink_status (*run)(const void* state, const shrink_params* params, const shrink_host* host, shrink_error* error);
    /* What the stage holds in memory beyond the model state, for the planner's peak-memory
       estimate (SHRINK_RESOURCE_* bits), and how its time grows (SHRINK_TIME_*). */
    uint32_t resources;
    int32_t time_class;

    /* Appended after the first release: read only when struct_size covers the member. */

    /** The stage's own estimate of the bytes it holds at its peak beyond the model state,
     *  from its params and the model's outline; it replaces the estimate `resources` implies.
     *  NULL: the planner uses `resources`. */
    shrink_status (*memory_bytes)(const void* state, const shrink_params* params,
                                  const shrink_model_outline* model, uint64_t* bytes, shrink_error* error);

    /** An evaluator's metrics, comma-separated ("perplexity"): the results a budget may judge
     *  it by. The plan refuses an evaluator that does not report the recipe's metric.
     *  NULL: not declared (a missing metric is then found when the evaluator runs). */
    const char* metrics;

    /** SHRINK_STAGE_* bits; unknown bits are refused at load. 0: none. */
    uint32_t flags;
} shrink_stage_type;

/* The plan may run the stage ahead of the run (`shrink plan`) on the input it will get when
   that input is at hand without running anything else (its parent's output in the stage
   cache, or the input model), and show its log and results: quantizer.mixed's assignment.
   For stages that are quick beside the stages before them and deterministic; the model the
   preview leaves is thrown away. */
#define SHRINK_STAGE_PREVIEW 1u

#define SHRINK_RESOURCE_WEIGHT_COPY 1u      /* a float copy of the largest weight it works on */
#define SHRINK_RESOURCE_FORWARD 2u          /* runs the model: decoded weights and a batch of activations */
#define SHRINK_RESOURCE_ACTIVATION_CACHE 4u /* keeps every calibration sample's layer inputs */
#define SHRINK_RESOURCE_HESSIANS 8u         /* a d x d float64 matrix per layer input (X^T X) */
#define SHRINK_RESOURCE_TRAINING_STATE 16u  /* gradients and optimizer moments: 3 floats per weight */
#define SHRINK_RESOURCE_BLOCK_STREAM 32u    /* forward_blocks: the value between blocks for every calibration
                                               sample, twice; decoded weights and a batch. Counted
                                               even when the stage estimates its own memory */

#define SHRINK_TIME_WEIGHTS 1   /* linear in the number of weights */
#define SHRINK_TIME_DATA 2      /* forward passes over data */
#define SHRINK_TIME_SOLVE 3     /* per-layer factorizations or solves, superlinear in width */
#define SHRINK_TIME_TRAINING 4  /* many forward and backward passes */

typedef struct shrink_plugin_descriptor {
    uint32_t abi_version; /* first member in every version: SHRINK_ABI_VERSION of the plugin's build */
    uint32_t struct_size;
    const char* name;
    const char* version;
    const shrink_stage_type* stage_types;
    uint32_t stage_type_count;
} shrink_plugin_descriptor;

/* First released sizes: the smallest struct_size a reader accepts for each growing table
 * (the size of the table when ABI 1 was first released; members appended later are read
 * only when struct_size covers them). */
#define SHRINK_PLUGIN_DESCRIPTOR_SIZE_1 (offsetof(shrink_plugin_descriptor, stage_type_count) + sizeof(uint32_t))
#define SHRINK_STAGE_TYPE_SIZE_1 (offsetof(shrink_stage_type, time_class) + sizeof(int32_t))
#define SHRINK_HOST_SIZE_1 (offsetof(shrink_host, cuda) + sizeof(void*))
#define SHRINK_CUDA_SIZE_1 (offsetof(shrink_cuda, synchronize) + sizeof(void*))
#define SHRINK_TRAIN_SPEC_SIZE_1 (offsetof(shrink_train_spec, transform_user) + sizeof(void*))
#define SHRINK_TRAIN_REPORT_SIZE_1 (offsetof(shrink_train_report, last_epoch_loss) + sizeof(double))
#define SHRINK_MODEL_OUTLINE_SIZE_1 (offsetof(shrink_model_outline, calibration_samples) + sizeof(uint64_t))
#define SHRINK_ARTIFACT_INFO_SIZE_1 (offsetof(shrink_artifact_info, bytes) + sizeof(uint64_t))

/** The entry point's signature, fixed for all ABI versions. The plugin fills *out with a
 *  descriptor that lives as long as the library. */
typedef shrink_status (*shrink_plugin_entry_fn)(uint32_t host_abi_version, const shrink_plugin_descriptor** out,
                                                shrink_error* error);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* SHRINK_ABI_H */
