// The released layouts of abi.h, frozen: a change that moves a released member (reorders,
// removes, resizes) fails to compile here. Members appended after the first release are
// checked too, once released. Offsets are those of the LP64 ABI every supported target
// (x86-64 and aarch64 Linux) uses. See docs/plugins.md, "How the ABI grows".
#include <shrink/abi.h>

#include <climits>
#include <cstddef>

static_assert(sizeof(void*) == 8 && CHAR_BIT == 8, "the frozen layouts below are LP64's");

#define SHRINK_FROZEN(type, member, offset) \
    static_assert(offsetof(type, member) == (offset), #type "::" #member " moved: released layouts are frozen")

SHRINK_FROZEN(shrink_error, message, 0);

SHRINK_FROZEN(shrink_param_decl, name, 0);
SHRINK_FROZEN(shrink_param_decl, type, 8);
SHRINK_FROZEN(shrink_param_decl, default_value, 16);
SHRINK_FROZEN(shrink_param_decl, min_value, 24);
SHRINK_FROZEN(shrink_param_decl, max_value, 32);
SHRINK_FROZEN(shrink_param_decl, choices, 40);
SHRINK_FROZEN(shrink_param_decl, doc, 48);
static_assert(sizeof(shrink_param_decl) == 56, "shrink_param_decl has no size field: it never grows");

SHRINK_FROZEN(shrink_param_value, name, 0);
SHRINK_FROZEN(shrink_param_value, type, 8);
SHRINK_FROZEN(shrink_param_value, int_value, 16);
SHRINK_FROZEN(shrink_param_value, float_value, 24);
SHRINK_FROZEN(shrink_param_value, text, 32);
static_assert(sizeof(shrink_param_value) == 40, "shrink_param_value has no size field: it never grows");
SHRINK_FROZEN(shrink_params, count, 0);
SHRINK_FROZEN(shrink_params, values, 8);

SHRINK_FROZEN(shrink_fact_decl, relation, 0);
SHRINK_FROZEN(shrink_fact_decl, fact, 8);
SHRINK_FROZEN(shrink_fact_decl, when_param, 16);
static_assert(sizeof(shrink_fact_decl) == 24, "shrink_fact_decl has no size field: it never grows");

SHRINK_FROZEN(shrink_layer_info, name, 0);
SHRINK_FROZEN(shrink_layer_info, op, 8);
SHRINK_FROZEN(shrink_layer_info, weight, 16);
SHRINK_FROZEN(shrink_layer_info, bias, 24);
SHRINK_FROZEN(shrink_layer_info, in_features, 32);
SHRINK_FROZEN(shrink_layer_info, out_features, 40);
static_assert(sizeof(shrink_layer_info) == 48, "shrink_layer_info has no size field: it never grows");

SHRINK_FROZEN(shrink_tensor_info, ndim, 0);
SHRINK_FROZEN(shrink_tensor_info, shape, 8);
SHRINK_FROZEN(shrink_tensor_info, encoding, 72);
SHRINK_FROZEN(shrink_tensor_info, bits, 76);
SHRINK_FROZEN(shrink_tensor_info, stored_bytes, 80);
static_assert(sizeof(shrink_tensor_info) == 88, "shrink_tensor_info has no size field: it never grows");

SHRINK_FROZEN(shrink_quant_tensor, bits, 0);
SHRINK_FROZEN(shrink_quant_tensor, symmetric, 4);
SHRINK_FROZEN(shrink_quant_tensor, group_size, 8);
SHRINK_FROZEN(shrink_quant_tensor, values, 16);
SHRINK_FROZEN(shrink_quant_tensor, value_count, 24);
SHRINK_FROZEN(shrink_quant_tensor, scales, 32);
SHRINK_FROZEN(shrink_quant_tensor, zero_points, 40);
SHRINK_FROZEN(shrink_quant_tensor, scale_count, 48);
static_assert(sizeof(shrink_quant_tensor) == 56, "shrink_quant_tensor has no size field: it never grows");

SHRINK_FROZEN(shrink_forward_event, kind, 0);
SHRINK_FROZEN(shrink_forward_event, layer, 8);
SHRINK_FROZEN(shrink_forward_event, data, 16);
SHRINK_FROZEN(shrink_forward_event, rows, 24);
SHRINK_FROZEN(shrink_forward_event, cols, 32);
SHRINK_FROZEN(shrink_forward_event, labels, 40);
SHRINK_FROZEN(shrink_forward_event, seconds, 48);
static_assert(sizeof(shrink_forward_event) == 56, "shrink_forward_event has no size field: it never grows");

SHRINK_FROZEN(shrink_train_spec, struct_size, 0);
SHRINK_FROZEN(shrink_train_spec, epochs, 4);
SHRINK_FROZEN(shrink_train_spec, batch, 8);
SHRINK_FROZEN(shrink_train_spec, max_samples, 16);
SHRINK_FROZEN(shrink_train_spec, optimizer, 24);
SHRINK_FROZEN(shrink_train_spec, learning_rate, 32);
SHRINK_FROZEN(shrink_train_spec, momentum, 40);
SHRINK_FROZEN(shrink_train_spec, weight_decay, 48);
SHRINK_FROZEN(shrink_train_spec, schedule, 56);
SHRINK_FROZEN(shrink_train_spec, step_epochs, 60);
SHRINK_FROZEN(shrink_train_spec, step_gamma, 64);
SHRINK_FROZEN(shrink_train_spec, distill_alpha, 72);
SHRINK_FROZEN(shrink_train_spec, temperature, 80);
SHRINK_FROZEN(shrink_train_spec, hidden_pairs, 88);
SHRINK_FROZEN(shrink_train_spec, hidden_weight, 96);
SHRINK_FROZEN(shrink_train_spec, batch_statistics, 104);
SHRINK_FROZEN(shrink_train_spec, transform_tensors, 112);
SHRINK_FROZEN(shrink_train_spec, transform, 120);
SHRINK_FROZEN(shrink_train_spec, transform_user, 128);
static_assert(SHRINK_TRAIN_SPEC_SIZE_1 == 136);

SHRINK_FROZEN(shrink_train_report, struct_size, 0);
SHRINK_FROZEN(shrink_train_report, steps, 8);
SHRINK_FROZEN(shrink_train_report, first_epoch_loss, 16);
SHRINK_FROZEN(shrink_train_report, last_epoch_loss, 24);
static_assert(SHRINK_TRAIN_REPORT_SIZE_1 == 32);

SHRINK_FROZEN(shrink_cuda, struct_size, 0);
SHRINK_FROZEN(shrink_cuda, ctx, 8);
SHRINK_FROZEN(shrink_cuda, ordinal, 16);
SHRINK_FROZEN(shrink_cuda, stream, 24);
SHRINK_FROZEN(shrink_cuda, cublas, 32);
SHRINK_FROZEN(shrink_cuda, cusolver, 40);
SHRINK_FROZEN(shrink_cuda, alloc, 48);
SHRINK_FROZEN(shrink_cuda, release, 56);
SHRINK_FROZEN(shrink_cuda, upload, 64);
SHRINK_FROZEN(shrink_cuda, download, 72);
SHRINK_FROZEN(shrink_cuda, synchronize, 80);
static_assert(SHRINK_CUDA_SIZE_1 == 88);

SHRINK_FROZEN(shrink_host, struct_size, 0);
SHRINK_FROZEN(shrink_host, ctx, 8);
SHRINK_FROZEN(shrink_host, seed, 16);
SHRINK_FROZEN(shrink_host, device, 24);
SHRINK_FROZEN(shrink_host, log, 32);
SHRINK_FROZEN(shrink_host, progress, 40);
SHRINK_FROZEN(shrink_host, layer_count, 48);
SHRINK_FROZEN(shrink_host, layer_get, 56);
SHRINK_FROZEN(shrink_host, tensor_info, 64);
SHRINK_FROZEN(shrink_host, tensor_read_f32, 72);
SHRINK_FROZEN(shrink_host, tensor_read_mask, 80);
SHRINK_FROZEN(shrink_host, tensor_write_f32, 88);
SHRINK_FROZEN(shrink_host, tensor_write_quant, 96);
SHRINK_FROZEN(shrink_host, layer_factorize, 104);
SHRINK_FROZEN(shrink_host, layer_set_input_quant, 112);
SHRINK_FROZEN(shrink_host, stat_put, 120);
SHRINK_FROZEN(shrink_host, stat_get, 128);
SHRINK_FROZEN(shrink_host, forward, 136);
SHRINK_FROZEN(shrink_host, model_size_bytes, 144);
SHRINK_FROZEN(shrink_host, result_put, 152);
SHRINK_FROZEN(shrink_host, train, 160);
SHRINK_FROZEN(shrink_host, make_student, 168);
SHRINK_FROZEN(shrink_host, cuda, 176);
static_assert(SHRINK_HOST_SIZE_1 == 184);
SHRINK_FROZEN(shrink_host, tensor_dtype, 184);  // appended after the first release
SHRINK_FROZEN(shrink_host, tensor_read_rows_f32, 192);
SHRINK_FROZEN(shrink_host, artifact_put, 200);
SHRINK_FROZEN(shrink_host, artifact_find, 208);
SHRINK_FROZEN(shrink_host, artifact_read, 216);
SHRINK_FROZEN(shrink_host, token_bytes, 224);
SHRINK_FROZEN(shrink_host, layer_io, 232);
SHRINK_FROZEN(shrink_host, forward_blocks, 240);
SHRINK_FROZEN(shrink_host, tensor_write_table, 248);
SHRINK_FROZEN(shrink_host, forward_trial, 256);
SHRINK_FROZEN(shrink_host, layer_set_input_quant_per_token, 264);

SHRINK_FROZEN(shrink_trial_tensor, name, 0);
SHRINK_FROZEN(shrink_trial_tensor, values, 8);
SHRINK_FROZEN(shrink_trial_tensor, count, 16);
static_assert(sizeof(shrink_trial_tensor) == 24);

SHRINK_FROZEN(shrink_table_tensor, struct_size, 0);
SHRINK_FROZEN(shrink_table_tensor, bits, 4);
SHRINK_FROZEN(shrink_table_tensor, kind, 8);
SHRINK_FROZEN(shrink_table_tensor, group_size, 16);
SHRINK_FROZEN(shrink_table_tensor, books, 24);
SHRINK_FROZEN(shrink_table_tensor, double_quant, 32);
SHRINK_FROZEN(shrink_table_tensor, codes, 40);
SHRINK_FROZEN(shrink_table_tensor, code_count, 48);
SHRINK_FROZEN(shrink_table_tensor, scales, 56);
SHRINK_FROZEN(shrink_table_tensor, scale_count, 64);
SHRINK_FROZEN(shrink_table_tensor, table, 72);
SHRINK_FROZEN(shrink_table_tensor, table_count, 80);
static_assert(sizeof(shrink_table_tensor) == 88);

SHRINK_FROZEN(shrink_artifact_info, struct_size, 0);
SHRINK_FROZEN(shrink_artifact_info, dtype, 4);
SHRINK_FROZEN(shrink_artifact_info, rank, 8);
SHRINK_FROZEN(shrink_artifact_info, shape, 16);
SHRINK_FROZEN(shrink_artifact_info, bytes, 48);
static_assert(SHRINK_ARTIFACT_INFO_SIZE_1 == 56);

SHRINK_FROZEN(shrink_model_outline, struct_size, 0);
SHRINK_FROZEN(shrink_model_outline, matrix_layers, 4);
SHRINK_FROZEN(shrink_model_outline, parameters, 8);
SHRINK_FROZEN(shrink_model_outline, largest_weight, 16);
SHRINK_FROZEN(shrink_model_outline, widest_input, 24);
SHRINK_FROZEN(shrink_model_outline, activation_floats, 32);
SHRINK_FROZEN(shrink_model_outline, calibration_samples, 40);
static_assert(SHRINK_MODEL_OUTLINE_SIZE_1 == 48);

SHRINK_FROZEN(shrink_stage_type, struct_size, 0);
SHRINK_FROZEN(shrink_stage_type, name, 8);
SHRINK_FROZEN(shrink_stage_type, doc, 16);
SHRINK_FROZEN(shrink_stage_type, params, 24);
SHRINK_FROZEN(shrink_stage_type, param_count, 32);
SHRINK_FROZEN(shrink_stage_type, facts, 40);
SHRINK_FROZEN(shrink_stage_type, fact_count, 48);
SHRINK_FROZEN(shrink_stage_type, devices, 52);
SHRINK_FROZEN(shrink_stage_type, state, 56);
SHRINK_FROZEN(shrink_stage_type, expected_drop, 64);
SHRINK_FROZEN(shrink_stage_type, run, 72);
SHRINK_FROZEN(shrink_stage_type, resources, 80);
SHRINK_FROZEN(shrink_stage_type, time_class, 84);
static_assert(SHRINK_STAGE_TYPE_SIZE_1 == 88);
SHRINK_FROZEN(shrink_stage_type, memory_bytes, 88);  // appended after the first release
SHRINK_FROZEN(shrink_stage_type, metrics, 96);       // appended after memory_bytes
SHRINK_FROZEN(shrink_stage_type, flags, 104);        // appended after metrics

SHRINK_FROZEN(shrink_plugin_descriptor, abi_version, 0);
SHRINK_FROZEN(shrink_plugin_descriptor, struct_size, 4);
SHRINK_FROZEN(shrink_plugin_descriptor, name, 8);
SHRINK_FROZEN(shrink_plugin_descriptor, version, 16);
SHRINK_FROZEN(shrink_plugin_descriptor, stage_types, 24);
SHRINK_FROZEN(shrink_plugin_descriptor, stage_type_count, 32);
static_assert(SHRINK_PLUGIN_DESCRIPTOR_SIZE_1 == 36);
