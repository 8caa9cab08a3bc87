// chatui's int4 linear layer for CPUs: weights in blocks of 32 with a scale and a minimum each
// (w = d * q + m, q in 0..15, d and m in fp16), activations quantized to int8 per block of 32 at
// each call, and the dot products done in int8 (AVX512-VNNI, AVX-VNNI, or AVX2's maddubs).
//
// Packed layout: the output rows in tiles of 16; a tile holds its blocks in order, each block
// 320 bytes: 256 bytes of nibbles, 16 fp16 scales, 16 fp16 minimums. Byte `r * 4 + t` of nibble
// chunk `i` (64 bytes) holds row r's weight `4 * i + t` in its low nibble and weight `16 + 4 * i + t`
// in its high nibble. So a 512-bit load is 16 rows times 4 weights after one mask, the layout a
// `dpbusd` with one broadcast group of 4 activations wants, and the weights stream in the order
// they are used. Rows are padded to a multiple of 16 and columns to a multiple of 32 with zeros.
//
// y[n] = sum_b d[n,b] * sx[b] * sum_k q[n,k] * xq[k]  +  m[n,b] * sx[b] * sum_k xq[k]    (k in block b)
//
// That is the float matmul of the dequantized weights with the int8-rounded activations. (The
// minimums' term takes the rounded activations' sum, not the exact one: the levels q are 0..15,
// not centred, and the two terms' rounding errors cancel only together. With the exact sum the
// layer's error was 2.5x larger and SmolLM2-135M's perplexity 2% worse.)
//
// A prompt on a CPU with AMX (20 rows or more) is instead a bf16 GEMM on AMX tiles, its weights
// unpacked from this layout block by block (see prefill_amx).
//
// Registered with torch.library as chatui::int4_linear (torch.compile treats it as one opaque op),
// chatui::int4_pack, chatui::int4_unpack and chatui::int4_isas. No Python binding is needed.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/util/Half.h>
#include <torch/library.h>

#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

namespace {

constexpr int64_t kRows = 16;                              // output rows in a tile
constexpr int64_t kBlock = 32;                             // weights per scale and minimum
constexpr int64_t kNibbleBytes = kRows * kBlock / 2;       // 256
constexpr int64_t kBlockBytes = kNibbleBytes + kRows * 4;  // + 16 fp16 scales + 16 fp16 minimums
constexpr int64_t kRowsAtOnce = 4;                         // activation rows sharing one pass over a tile
constexpr int64_t kPrefetchBlocks = 32;  // how far ahead of the weights' stream to prefetch (into L2): measured best of 0-64

enum class Isa { Scalar, Avx2, AvxVnni, Avx512Vnni };

int64_t round_up(int64_t value, int64_t multiple) { return (value + multiple - 1) / multiple * multiple; }

// Activations of one call, quantized: per row, int8 values (columns padded to kBlock with zeros),
// a scale and the float sum per block.
struct Activations {
  int64_t blocks;
  std::vector<int8_t> values;
  std::vector<float> scales;
  std::vector<float> sums;  // scale * the sum of the block's int8 values
  const int8_t* row_values(int64_t row) const { return values.data() + row * blocks * kBlock; }
  const float* row_scales(int64_t row) const { return scales.data() + row * blocks; }
  const float* row_sums(int64_t row) const { return sums.data() + row * blocks; }
};

Activations quantize_activations(const float* x, int64_t rows, int64_t columns) {
  Activations acts;
  acts.blocks = round_up(columns, kBlock) / kBlock;
  acts.values.assign(rows * acts.blocks * kBlock, 0);
  acts.scales.assign(rows * acts.blocks, 0.f);
  acts.sums.assign(rows * acts.blocks, 0.f);
  at::parallel_for(0, rows, 16, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const float* in = x + row * columns;
      int8_t* out = acts.values.data() + row * acts.blocks * kBlock;
      for (int64_t b = 0; b < acts.blocks; ++b) {
        const int64_t start = b * kBlock, stop = std::min(columns, start + kBlock);
        float amax = 0.f;
        for (int64_t k = start; k < stop; ++k) amax = std::max(amax, std::fabs(in[k]));
        const float scale = amax / 127.f;
        const float inverse = scale > 0.f ? 1.f / scale : 0.f;
        int32_t sum = 0;
        for (int64_t k = start; k < stop; ++k) {
          out[k] = static_cast<int8_t>(std::nearbyint(in[k] * inverse));  // |x| <= amax: within +-127
          sum += out[k];
        }
        acts.scales[row * acts.blocks + b] = scale;
        acts.sums[row * acts.blocks + b] = scale * static_cast<float>(sum);
      }
    }
  });
  return acts;
}

// One tile (16 output rows) for `count` activation rows: out[r][0..15] = the tile's outputs.
struct TileJob {
  const uint8_t* tile;
  int64_t blocks;
  const Activations* acts;
  int64_t first_row;
  int64_t count;  // <= kRowsAtOnce
  float* out;     // out + r * out_stride is row (first_row + r) of this tile
  int64_t out_stride;
};

void tile_scalar(const TileJob& job) {
  float acc[kRowsAtOnce][kRows] = {};
  for (int64_t b = 0; b < job.blocks; ++b) {
    const uint8_t* block = job.tile + b * kBlockBytes;
    const c10::Half* scales = reinterpret_cast<const c10::Half*>(block + kNibbleBytes);
    const c10::Half* minimums = scales + kRows;
    for (int64_t r = 0; r < job.count; ++r) {
      const int64_t row = job.first_row + r;
      const int8_t* xq = job.acts->row_values(row) + b * kBlock;
      const float sx = job.acts->row_scales(row)[b], sum = job.acts->row_sums(row)[b];
      for (int64_t n = 0; n < kRows; ++n) {
        int32_t dot = 0;
        for (int64_t i = 0; i < 4; ++i) {
          for (int64_t t = 0; t < 4; ++t) {
            const uint8_t byte = block[i * 64 + n * 4 + t];
            dot += static_cast<int32_t>(byte & 0x0F) * xq[4 * i + t];
            dot += static_cast<int32_t>(byte >> 4) * xq[16 + 4 * i + t];
          }
        }
        acc[r][n] += static_cast<float>(scales[n]) * sx * static_cast<float>(dot) + static_cast<float>(minimums[n]) * sum;
      }
    }
  }
  for (int64_t r = 0; r < job.count; ++r) std::memcpy(job.out + r * job.out_stride, acc[r], sizeof(acc[r]));
}

inline int32_t group_of_4(const int8_t* xq, int64_t j) {
  int32_t value;
  std::memcpy(&value, xq + 4 * j, 4);
  return value;
}

template <int64_t Count>
__attribute__((target("avx512f,avx512bw,avx512vnni,f16c,fma"))) void tile_avx512vnni(const TileJob& job) {
  __m512 acc[Count];
  for (int64_t r = 0; r < Count; ++r) acc[r] = _mm512_setzero_ps();
  const __m512i low = _mm512_set1_epi8(0x0F);
  const int8_t* xq[Count];
  const float* sx[Count];
  const float* sums[Count];
  for (int64_t r = 0; r < Count; ++r) {
    xq[r] = job.acts->row_values(job.first_row + r);
    sx[r] = job.acts->row_scales(job.first_row + r);
    sums[r] = job.acts->row_sums(job.first_row + r);
  }
  for (int64_t b = 0; b < job.blocks; ++b) {
    const uint8_t* block = job.tile + b * kBlockBytes;
    const char* ahead = reinterpret_cast<const char*>(block + kPrefetchBlocks * kBlockBytes);
    for (int64_t line = 0; line < kBlockBytes; line += 64) _mm_prefetch(ahead + line, _MM_HINT_T1);
    __m512i w[8];
    for (int64_t i = 0; i < 4; ++i) {
      const __m512i bytes = _mm512_loadu_si512(block + 64 * i);
      w[i] = _mm512_and_si512(bytes, low);
      w[i + 4] = _mm512_and_si512(_mm512_srli_epi16(bytes, 4), low);
    }
    const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + kNibbleBytes)));
    const __m512 m = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + kNibbleBytes + 32)));
    for (int64_t r = 0; r < Count; ++r) {
      const int8_t* x = xq[r] + b * kBlock;
      __m512i even = _mm512_setzero_si512(), odd = _mm512_setzero_si512();
      even = _mm512_dpbusd_epi32(even, w[0], _mm512_set1_epi32(group_of_4(x, 0)));
      odd = _mm512_dpbusd_epi32(odd, w[1], _mm512_set1_epi32(group_of_4(x, 1)));
      even = _mm512_dpbusd_epi32(even, w[2], _mm512_set1_epi32(group_of_4(x, 2)));
      odd = _mm512_dpbusd_epi32(odd, w[3], _mm512_set1_epi32(group_of_4(x, 3)));
      even = _mm512_dpbusd_epi32(even, w[4], _mm512_set1_epi32(group_of_4(x, 4)));
      odd = _mm512_dpbusd_epi32(odd, w[5], _mm512_set1_epi32(group_of_4(x, 5)));
      even = _mm512_dpbusd_epi32(even, w[6], _mm512_set1_epi32(group_of_4(x, 6)));
      odd = _mm512_dpbusd_epi32(odd, w[7], _mm512_set1_epi32(group_of_4(x, 7)));
      const __m512 dot = _mm512_cvtepi32_ps(_mm512_add_epi32(even, odd));
      acc[r] = _mm512_fmadd_ps(_mm512_mul_ps(d, _mm512_set1_ps(sx[r][b])), dot, acc[r]);
      acc[r] = _mm512_fmadd_ps(m, _mm512_set1_ps(sums[r][b]), acc[r]);
    }
  }
  for (int64_t r = 0; r < Count; ++r) _mm512_storeu_ps(job.out + r * job.out_stride, acc[r]);
}

// AVX2 and AVX-VNNI: the same layout, each 64-byte chunk as two halves of 8 rows. Without VNNI,
// maddubs multiplies pairs into int16 (15 * 127 * 2 = 3810 at most) and 8 of them still fit int16
// (30480), so one madd per block turns them into int32.
#define CHATUI_TILE_AVX2(NAME, TARGET, ...)                                                                     \
  template <int64_t Count>                                                                                      \
  __attribute__((target(TARGET))) void NAME(const TileJob& job) {                                               \
    __m256 acc[Count][2];                                                                                       \
    for (int64_t r = 0; r < Count; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();                            \
    const __m256i low = _mm256_set1_epi8(0x0F);                                                                 \
    [[maybe_unused]] const __m256i ones = _mm256_set1_epi16(1);                                                 \
    for (int64_t b = 0; b < job.blocks; ++b) {                                                                  \
      const uint8_t* block = job.tile + b * kBlockBytes;                                                        \
      const char* ahead = reinterpret_cast<const char*>(block + kPrefetchBlocks * kBlockBytes);                 \
      for (int64_t line = 0; line < kBlockBytes; line += 64) _mm_prefetch(ahead + line, _MM_HINT_T1);           \
      for (int64_t half = 0; half < 2; ++half) {                                                                \
        __m256i w[8];                                                                                           \
        for (int64_t i = 0; i < 4; ++i) {                                                                       \
          const __m256i bytes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 64 * i + 32 * half)); \
          w[i] = _mm256_and_si256(bytes, low);                                                                  \
          w[i + 4] = _mm256_and_si256(_mm256_srli_epi16(bytes, 4), low);                                        \
        }                                                                                                       \
        const __m256 d = _mm256_cvtph_ps(                                                                       \
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(block + kNibbleBytes + 16 * half)));               \
        const __m256 m = _mm256_cvtph_ps(                                                                       \
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(block + kNibbleBytes + 32 + 16 * half)));          \
        for (int64_t r = 0; r < Count; ++r) {                                                                   \
          const int8_t* x = job.acts->row_values(job.first_row + r) + b * kBlock;                               \
          __m256i dots;                                                                                         \
          __VA_ARGS__                                                                                           \
          const float sx = job.acts->row_scales(job.first_row + r)[b];                                          \
          const float sum = job.acts->row_sums(job.first_row + r)[b];                                           \
          acc[r][half] = _mm256_fmadd_ps(_mm256_mul_ps(d, _mm256_set1_ps(sx)), _mm256_cvtepi32_ps(dots), acc[r][half]); \
          acc[r][half] = _mm256_fmadd_ps(m, _mm256_set1_ps(sum), acc[r][half]);                                 \
        }                                                                                                       \
      }                                                                                                         \
    }                                                                                                           \
    for (int64_t r = 0; r < Count; ++r) {                                                                       \
      _mm256_storeu_ps(job.out + r * job.out_stride, acc[r][0]);                                                \
      _mm256_storeu_ps(job.out + r * job.out_stride + 8, acc[r][1]);                                            \
    }                                                                                                           \
  }

CHATUI_TILE_AVX2(tile_avx2, "avx2,f16c,fma", {
  __m256i pairs = _mm256_maddubs_epi16(w[0], _mm256_set1_epi32(group_of_4(x, 0)));
  for (int64_t j = 1; j < 8; ++j) pairs = _mm256_add_epi16(pairs, _mm256_maddubs_epi16(w[j], _mm256_set1_epi32(group_of_4(x, j))));
  dots = _mm256_madd_epi16(pairs, ones);
})

CHATUI_TILE_AVX2(tile_avxvnni, "avx2,avxvnni,f16c,fma", {
  __m256i even = _mm256_setzero_si256(), odd = _mm256_setzero_si256();
  for (int64_t j = 0; j < 8; j += 2) {
    even = _mm256_dpbusd_avx_epi32(even, w[j], _mm256_set1_epi32(group_of_4(x, j)));
    odd = _mm256_dpbusd_avx_epi32(odd, w[j + 1], _mm256_set1_epi32(group_of_4(x, j + 1)));
  }
  dots = _mm256_add_epi32(even, odd);
})

using TileFn = void (*)(const TileJob&);

#define CHATUI_BY_COUNT(NAME)                                                         \
  TileFn NAME##_for(int64_t count) {                                                  \
    switch (count) {                                                                  \
      case 1: return NAME<1>;                                                         \
      case 2: return NAME<2>;                                                         \
      case 3: return NAME<3>;                                                         \
      default: return NAME<4>;                                                        \
    }                                                                                 \
  }

CHATUI_BY_COUNT(tile_avx512vnni)
CHATUI_BY_COUNT(tile_avxvnni)
CHATUI_BY_COUNT(tile_avx2)

TileFn tile_function(Isa isa, int64_t count) {
  switch (isa) {
    case Isa::Avx512Vnni: return tile_avx512vnni_for(count);
    case Isa::AvxVnni: return tile_avxvnni_for(count);
    case Isa::Avx2: return tile_avx2_for(count);
    default: return tile_scalar;
  }
}

bool cpu_has(Isa isa) {
  __builtin_cpu_init();
  switch (isa) {
    case Isa::Avx512Vnni:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("fma");
    case Isa::AvxVnni:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("avxvnni") && __builtin_cpu_supports("fma");
    case Isa::Avx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    default:
      return true;
  }
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Avx512Vnni: return "avx512vnni";
    case Isa::AvxVnni: return "avxvnni";
    case Isa::Avx2: return "avx2";
    default: return "scalar";
  }
}

Isa parse_isa(const std::string& name) {
  for (Isa isa : {Isa::Avx512Vnni, Isa::AvxVnni, Isa::Avx2, Isa::Scalar}) {
    if (name == isa_name(isa)) {
      TORCH_CHECK(cpu_has(isa), "chatui int4: this CPU cannot run the ", name, " kernel");
      return isa;
    }
  }
  TORCH_CHECK(false, "chatui int4: unknown kernel ", name);
}

Isa best_isa() {
  static const Isa best = [] {
    for (Isa isa : {Isa::Avx512Vnni, Isa::AvxVnni, Isa::Avx2}) {
      if (cpu_has(isa)) return isa;
    }
    return Isa::Scalar;
  }();
  return best;
}

std::vector<std::string> int4_isas() {
  std::vector<std::string> names;
  for (Isa isa : {Isa::Avx512Vnni, Isa::AvxVnni, Isa::Avx2, Isa::Scalar}) {
    if (cpu_has(isa)) names.emplace_back(isa_name(isa));
  }
  return names;
}

void check_bias(const std::optional<at::Tensor>& bias, int64_t out_features) {
  if (bias.has_value() && bias->defined()) {
    TORCH_CHECK(bias->device().is_cpu() && bias->numel() == out_features, "chatui int4: the bias holds ",
                bias->numel(), " values on ", bias->device(), ", the layer has ", out_features, " outputs on the CPU");
  }
}

void check_packed(const at::Tensor& packed, int64_t out_features, int64_t in_features) {
  TORCH_CHECK(packed.device().is_cpu() && packed.scalar_type() == at::kByte && packed.is_contiguous(),
              "chatui int4: packed weights must be a contiguous uint8 CPU tensor");
  TORCH_CHECK(out_features > 0 && in_features > 0, "chatui int4: the layer's sizes must be positive");
  const int64_t expected = round_up(out_features, kRows) / kRows * (round_up(in_features, kBlock) / kBlock) * kBlockBytes;
  TORCH_CHECK(packed.numel() == expected, "chatui int4: packed weights hold ", packed.numel(), " bytes, a ",
              out_features, "x", in_features, " layer needs ", expected);
}

at::Tensor linear(const at::Tensor& x, const at::Tensor& packed, const std::optional<at::Tensor>& bias,
                  int64_t out_features, int64_t in_features, Isa isa) {
  TORCH_CHECK(x.device().is_cpu(), "chatui int4: the input must be on the CPU");
  TORCH_CHECK(x.dim() >= 1 && x.size(-1) == in_features, "chatui int4: the input's last dimension is ", x.size(-1),
              ", the layer takes ", in_features);
  const at::Tensor rows = x.reshape({-1, in_features}).to(at::kFloat).contiguous();
  const int64_t count = rows.size(0);
  const int64_t tiles = round_up(out_features, kRows) / kRows;
  const int64_t blocks = round_up(in_features, kBlock) / kBlock;
  const int64_t padded = tiles * kRows;
  at::Tensor out = at::empty({count, padded}, rows.options());
  if (count > 0) {
    const Activations acts = quantize_activations(rows.data_ptr<float>(), count, in_features);
    const uint8_t* weights = packed.data_ptr<uint8_t>();
    float* result = out.data_ptr<float>();
    at::parallel_for(0, tiles, 1, [&](int64_t begin, int64_t end) {
      for (int64_t tile = begin; tile < end; ++tile) {
        for (int64_t first = 0; first < count; first += kRowsAtOnce) {
          const int64_t now = std::min(kRowsAtOnce, count - first);
          const TileJob job{weights + tile * blocks * kBlockBytes, blocks, &acts, first, now,
                            result + first * padded + tile * kRows, padded};
          tile_function(isa, now)(job);
        }
      }
    });
  }
  at::Tensor y = padded == out_features ? out : out.narrow(1, 0, out_features);
  if (bias.has_value() && bias->defined()) y = y + bias->to(at::kFloat);
  std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
  shape.back() = out_features;
  return y.to(x.scalar_type()).reshape(shape);
}

// A prompt (many rows at once) in bf16 on a CPU with AMX: a GEMM on AMX tiles whose weights are
// unpacked from the int4 layout straight into AMX's bf16 pair layout, a slice at a time into a
// buffer that stays in the core's L2 cache. A packed block (16 rows by 32 weights) is exactly
// one AMX weight tile (32 k by 16 n), so nothing is transposed or written out whole. (Unpacking
// the whole layer to bf16 and calling oneDNN, which then repacks it for AMX, cost 1.5-1.7x
// bf16's own matmul per layer.) Below kGemmRows rows (decode, short turns) the int8 path is
// faster: it reads the packed weights once and writes nothing.
constexpr int64_t kGemmRows = 20;  // measured at 1.7B's and 135M's shapes: even at 16-24 rows, AMX 2x faster at 64
constexpr int64_t kTileRows = 16;                        // AMX: a tile is 16 rows of 64 bytes
constexpr int64_t kSliceTiles = 8;                       // output rows (in 16s) of a slice: 128 columns
constexpr int64_t kSliceBlocks = 64;                     // k (in 32s) of a slice: 2048, so 512 KB of bf16 weights
constexpr int64_t kTileBytes = kTileRows * 64;
constexpr int64_t kOneDnnRows = 1024;  // measured at 1.7B's and Qwen2.5-1.5B's shapes: even at 768-1024 rows
constexpr int64_t kOneDnnMostWeights = int64_t{64} << 20;  // a bigger layer (an output layer) keeps to the slices

bool cpu_has_amx_bf16() {
  static const bool has = [] {
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("amx-bf16") || !__builtin_cpu_supports("avx512bf16")) return false;
    // Linux hands out the AMX register state only on request (once per process).
    constexpr long kRequestPermission = 0x1023, kTileData = 18;  // ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA
    return syscall(SYS_arch_prctl, kRequestPermission, kTileData) == 0;
  }();
  return has;
}

// One packed block (16 rows, 32 weights) as an AMX weight tile in place: row r holds, for each of
// the 16 output rows n, the bf16 pair (w[n][2r], w[n][2r+1]).
__attribute__((target("avx512f,avx512bw,avx512bf16,f16c,fma"))) void unpack_block_to_tile(const uint8_t* block,
                                                                                            uint16_t* tile) {
  const __m512i low = _mm512_set1_epi32(0x0F);
  // cvtne2ps gives [a's 16 | b's 16]; this interleaves them into 16 pairs
  const __m512i pairs = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6, 21, 5,
                                         20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + kNibbleBytes)));
  const __m512 m = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + kNibbleBytes + 32)));
  for (int64_t i = 0; i < 4; ++i) {
    const __m512i bytes = _mm512_loadu_si512(block + 64 * i);  // lane n: row n's weights 4i..4i+3, 16+4i..
    __m512 lo[4], hi[4];
    for (int64_t t = 0; t < 4; ++t) {
      const __m512i byte = _mm512_srli_epi32(bytes, static_cast<unsigned>(8 * t));
      lo[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_and_si512(byte, low)), d, m);  // k = 4i + t
      hi[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_and_si512(_mm512_srli_epi32(byte, 4), low)), d, m);  // 16 + 4i + t
    }
    for (int64_t half = 0; half < 2; ++half) {  // pairs (4i, 4i+1) and (4i+2, 4i+3): rows 2i and 2i+1
      const __m512i low_pair = _mm512_permutexvar_epi16(pairs, (__m512i)_mm512_cvtne2ps_pbh(lo[2 * half + 1], lo[2 * half]));
      const __m512i high_pair = _mm512_permutexvar_epi16(pairs, (__m512i)_mm512_cvtne2ps_pbh(hi[2 * half + 1], hi[2 * half]));
      _mm512_storeu_si512(tile + (2 * i + half) * 32, low_pair);
      _mm512_storeu_si512(tile + (8 + 2 * i + half) * 32, high_pair);
    }
  }
}

struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t bytes_per_row[16] = {};
  uint8_t rows[16] = {};
};

// out[m][n] for the tiles [tile_begin, tile_end) of one slice into `sums` ([row][128] fp32,
// kept across k slices). x is in AMX tiles, [16 rows][block] each 16 by 32, padded with zeros
// to 32-row groups and whole blocks, so each tile load reads 1 KB in order.
__attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512bf16,f16c,fma"))) void amx_slice(
    const uint8_t* packed, int64_t blocks, const at::BFloat16* x, int64_t padded_rows, int64_t tile_begin,
    int64_t tile_end, uint16_t* weights, float* sums) {
  const int64_t tiles = tile_end - tile_begin;
  for (int64_t k0 = 0; k0 < blocks; k0 += kSliceBlocks) {
    const int64_t k1 = std::min(blocks, k0 + kSliceBlocks);
    // the slice's weights, [block][tile] as AMX tiles (a missing odd tile is zeros)
    for (int64_t b = k0; b < k1; ++b) {
      for (int64_t t = 0; t < round_up(tiles, 2); ++t) {
        uint16_t* tile = weights + ((b - k0) * kSliceTiles + t) * kTileBytes / 2;
        if (t < tiles) {
          unpack_block_to_tile(packed + ((tile_begin + t) * blocks + b) * kBlockBytes, tile);
        } else {
          std::memset(tile, 0, kTileBytes);
        }
      }
    }
    asm volatile("" ::: "memory");  // GCC 12's tile loads do not say they read memory: the unpack's stores go first
    for (int64_t row = 0; row < padded_rows; row += 2 * kTileRows) {
      for (int64_t t = 0; t < tiles; t += 2) {
        float* c = sums + row * kSliceTiles * kRows + t * kRows;  // sums: [padded_rows][128]
        constexpr int64_t c_stride = kSliceTiles * kRows * 4;
        if (k0 == 0) {
          _tile_zero(0);
          _tile_zero(1);
          _tile_zero(2);
          _tile_zero(3);
        } else {
          _tile_loadd(0, c, c_stride);
          _tile_loadd(1, c + kRows, c_stride);
          _tile_loadd(2, c + kTileRows * kSliceTiles * kRows, c_stride);
          _tile_loadd(3, c + kTileRows * kSliceTiles * kRows + kRows, c_stride);
        }
        for (int64_t b = k0; b < k1; ++b) {
          const at::BFloat16* a = x + ((row / kTileRows) * blocks + b) * kTileBytes / 2;
          const uint16_t* w = weights + ((b - k0) * kSliceTiles + t) * kTileBytes / 2;
          _tile_loadd(4, a, 64);
          _tile_loadd(5, a + blocks * kTileBytes / 2, 64);
          _tile_loadd(6, w, 64);
          _tile_loadd(7, w + kTileBytes / 2, 64);
          _tile_dpbf16ps(0, 4, 6);
          _tile_dpbf16ps(1, 4, 7);
          _tile_dpbf16ps(2, 5, 6);
          _tile_dpbf16ps(3, 5, 7);
        }
        _tile_stored(0, c, c_stride);
        _tile_stored(1, c + kRows, c_stride);
        _tile_stored(2, c + kTileRows * kSliceTiles * kRows, c_stride);
        _tile_stored(3, c + kTileRows * kSliceTiles * kRows + kRows, c_stride);
      }
    }
  }
}

// Every tile 16 rows of 64 bytes. Kept in static memory: GCC 12 drops the stores to a stack copy,
// not seeing that ldtilecfg reads them, and the CPU then faults on an all-zero configuration.
const TileConfig& tile_config() {
  static const TileConfig config = [] {
    TileConfig made;
    for (int i = 0; i < 8; ++i) {
      made.rows[i] = kTileRows;
      made.bytes_per_row[i] = 64;
    }
    return made;
  }();
  return config;
}

// A slice's fp32 sums ([row][128]) plus the bias, as bf16 into the output's columns.
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16"))) void write_bf16(const float* sums, int64_t count,
                                                                       int64_t columns, const float* bias,
                                                                       at::BFloat16* out, int64_t out_stride) {
  for (int64_t r = 0; r < count; ++r) {
    const float* source = sums + r * kSliceTiles * kRows;
    at::BFloat16* target = out + r * out_stride;
    for (int64_t n = 0; n < columns; n += 16) {
      const __mmask16 lanes = columns - n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (columns - n)) - 1);
      __m512 value = _mm512_maskz_loadu_ps(lanes, source + n);
      if (bias != nullptr) value = _mm512_add_ps(value, _mm512_maskz_loadu_ps(lanes, bias + n));
      _mm256_mask_storeu_epi16(target + n, lanes, (__m256i)_mm512_cvtneps_pbh(value));
    }
  }
}

__attribute__((target("amx-tile,amx-bf16"))) void amx_begin() { _tile_loadconfig(&tile_config()); }

__attribute__((target("amx-tile"))) void amx_end() { _tile_release(); }

at::Tensor prefill_amx(const at::Tensor& x, const at::Tensor& packed, const std::optional<at::Tensor>& bias,
                       int64_t out_features, int64_t in_features) {
  const int64_t tiles = round_up(out_features, kRows) / kRows;
  const int64_t blocks = round_up(in_features, kBlock) / kBlock;
  const at::Tensor rows = x.reshape({-1, in_features});
  const int64_t count = rows.size(0), padded_rows = round_up(count, 2 * kTileRows);
  at::Tensor padded = at::zeros({padded_rows, blocks * kBlock}, rows.options());
  padded.narrow(0, 0, count).narrow(1, 0, in_features).copy_(rows);
  // [row tile][block][16][32]
  padded = padded.view({padded_rows / kTileRows, kTileRows, blocks, kBlock}).transpose(1, 2).contiguous();
  const at::Tensor bias_f = bias.has_value() && bias->defined() ? bias->to(at::kFloat).contiguous() : at::Tensor();
  at::Tensor out = at::empty({count, out_features}, rows.options());
  // tiles a slice: kSliceTiles, fewer for a narrow layer so that every thread has a share
  const int64_t threads = std::max<int64_t>(at::get_num_threads(), 1);
  const int64_t slice_tiles = std::clamp<int64_t>(round_up((tiles + threads - 1) / threads, 2), 2, kSliceTiles);
  const int64_t slices = (tiles + slice_tiles - 1) / slice_tiles;
  at::parallel_for(0, slices, 1, [&](int64_t begin, int64_t end) {
    std::vector<uint16_t> weights(kSliceBlocks * kSliceTiles * kTileBytes / 2);
    std::vector<float> sums(padded_rows * kSliceTiles * kRows);
    amx_begin();
    for (int64_t slice = begin; slice < end; ++slice) {
      const int64_t tile_begin = slice * slice_tiles, tile_end = std::min(tiles, tile_begin + slice_tiles);
      amx_slice(packed.data_ptr<uint8_t>(), blocks, padded.data_ptr<at::BFloat16>(), padded_rows, tile_begin, tile_end,
                weights.data(), sums.data());
      const int64_t column = tile_begin * kRows, columns = std::min(out_features, tile_end * kRows) - column;
      write_bf16(sums.data(), count, columns, bias_f.defined() ? bias_f.data_ptr<float>() + column : nullptr,
                 out.data_ptr<at::BFloat16>() + column, out_features);
    }
    amx_end();
  });
  std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
  shape.back() = out_features;
  return out.view(shape);
}

// A long prompt (kOneDnnRows rows or more) unpacks the whole layer to bf16 instead, transposed,
// into one scratch buffer each layer reuses (kept for the process: the largest layer seen, 34 MB
// at the 1.7B shape), and multiplies it with oneDNN's GEMM: the unpack is then a small part of
// the work, and the GEMM keeps the prompt's rows in cache better than the slices above do once
// they outgrow L2 (at 1,024 rows the slices took up to 1.7x its time).
//
// The packed weights, transposed, as bf16: wt[k][n] for the padded sizes. A tile's 16 rows are a
// vector's lanes, so each k is one 32-byte store; blocks are split between the threads, so each
// writes whole rows of wt in order.
__attribute__((target("avx512f,avx512bw,avx512bf16,f16c,fma"))) void unpack_transposed_bf16_blocks(
    const uint8_t* packed, int64_t tiles, int64_t blocks, at::BFloat16* wt, int64_t width, int64_t begin,
    int64_t end) {
  const __m512i low = _mm512_set1_epi32(0x0F);
  for (int64_t b = begin; b < end; ++b) {
    for (int64_t tile = 0; tile < tiles; ++tile) {
      const uint8_t* block = packed + (tile * blocks + b) * kBlockBytes;
      const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + kNibbleBytes)));
      const __m512 m = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + kNibbleBytes + 32)));
      at::BFloat16* column = wt + b * kBlock * width + tile * kRows;
      for (int64_t i = 0; i < 4; ++i) {
        const __m512i bytes = _mm512_loadu_si512(block + 64 * i);  // lane n: row n's weights 4i..4i+3, 16+4i..
        for (int64_t t = 0; t < 4; ++t) {
          const __m512i byte = _mm512_srli_epi32(bytes, static_cast<unsigned>(8 * t));
          const __m512 lo = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_and_si512(byte, low)), d, m);
          const __m512 hi = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_and_si512(_mm512_srli_epi32(byte, 4), low)), d, m);
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(column + (4 * i + t) * width), (__m256i)_mm512_cvtneps_pbh(lo));
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(column + (16 + 4 * i + t) * width),
                              (__m256i)_mm512_cvtneps_pbh(hi));
        }
      }
    }
  }
}

// `width` (wt's row stride) is the padded row count plus a cache line, so that the 32 rows of wt
// one block writes do not all fall in one set of the L1 cache (a 4 KiB stride would).
int64_t transposed_width(int64_t tiles) { return tiles * kRows + 32; }

void unpack_transposed_bf16(const uint8_t* packed, int64_t tiles, int64_t blocks, at::BFloat16* wt) {
  const int64_t width = transposed_width(tiles);
  at::parallel_for(0, blocks, 1, [&](int64_t begin, int64_t end) {
    unpack_transposed_bf16_blocks(packed, tiles, blocks, wt, width, begin, end);
  });
}

at::Tensor prefill_onednn(const at::Tensor& x, const at::Tensor& packed, const std::optional<at::Tensor>& bias,
                        int64_t out_features, int64_t in_features) {
  static std::mutex scratch_lock;
  static at::Tensor scratch;
  const int64_t tiles = round_up(out_features, kRows) / kRows;
  const int64_t blocks = round_up(in_features, kBlock) / kBlock;
  const int64_t needed = transposed_width(tiles) * blocks * kBlock;
  std::lock_guard<std::mutex> guard(scratch_lock);
  if (!scratch.defined() || scratch.numel() < needed) scratch = at::empty({needed}, x.options().dtype(at::kBFloat16));
  unpack_transposed_bf16(packed.data_ptr<uint8_t>(), tiles, blocks, scratch.data_ptr<at::BFloat16>());
  const at::Tensor wt = scratch.narrow(0, 0, needed)
                            .view({blocks * kBlock, transposed_width(tiles)})
                            .narrow(0, 0, in_features)
                            .narrow(1, 0, out_features);
  at::Tensor y = at::matmul(x, wt);
  if (bias.has_value() && bias->defined()) y = y + bias->to(y.scalar_type());
  return y;
}

at::Tensor int4_linear(const at::Tensor& x, const at::Tensor& packed, const std::optional<at::Tensor>& bias,
                       int64_t out_features, int64_t in_features) {
  check_packed(packed, out_features, in_features);  // also: in_features > 0, so the row count below is defined
  check_bias(bias, out_features);
  if (x.scalar_type() == at::kBFloat16 && x.device().is_cpu() && x.dim() >= 1 && x.size(-1) == in_features &&
      x.numel() / in_features >= kGemmRows && cpu_has_amx_bf16()) {
    if (x.numel() / in_features >= kOneDnnRows && out_features * in_features <= kOneDnnMostWeights) {
      return prefill_onednn(x, packed, bias, out_features, in_features);
    }
    return prefill_amx(x, packed, bias, out_features, in_features);
  }
  return linear(x, packed, bias, out_features, in_features, best_isa());
}

at::Tensor int4_linear_isa(const at::Tensor& x, const at::Tensor& packed, const std::optional<at::Tensor>& bias,
                           int64_t out_features, int64_t in_features, const std::string& isa) {
  check_packed(packed, out_features, in_features);
  check_bias(bias, out_features);
  return linear(x, packed, bias, out_features, in_features, parse_isa(isa));
}

// Each block's scale and minimum: min/max, or of 21 ranges around it (the levels spread over 14
// to 16 steps) the one whose least-squares scale and minimum for its rounded levels leave the
// least error, weighted to favour the larger weights (w_k = x_k^2 + mean(x^2), as llama.cpp's
// k-quants do). SmolLM2-135M's perplexity over bf16 (benchmarks/bench_quality.py's text): +2.7%
// with this kernel (torchao's int4 g32: +4.7%); in an fp32 simulation with int8 activations,
// min/max alone gave +3.3%, the unweighted fit +5.7%, the weighted one +2.3%.
//
// A tile's 16 rows are fitted together, one row per lane, so the loops vectorize without any
// sum across lanes. Built for AVX512, AVX2 and plain x86-64, picked at load.
struct TileFit {
  float scale[kRows];
  float minimum[kRows];
};

__attribute__((target_clones("avx512f", "avx2", "default"))) void fit_tile_block(const float* values,
                                                                                 TileFit& fit) {
  // values: [kBlock][kRows], a row's block down a lane (padding rows and columns repeat a value)
  float lo[kRows], hi[kRows], mean_square[kRows] = {}, weights[kBlock][kRows];
  for (int j = 0; j < kRows; ++j) lo[j] = hi[j] = values[j];
  for (int k = 0; k < kBlock; ++k) {
    for (int j = 0; j < kRows; ++j) {
      const float x = values[k * kRows + j];
      lo[j] = std::min(lo[j], x);
      hi[j] = std::max(hi[j], x);
      mean_square[j] += x * x;
    }
  }
  for (int k = 0; k < kBlock; ++k) {
    for (int j = 0; j < kRows; ++j) {
      const float x = values[k * kRows + j];
      weights[k][j] = x * x + mean_square[j] / kBlock;
    }
  }
  float best_error[kRows];
  auto error_of = [&](const float* scale, const float* minimum, float* error) {
    float inverse[kRows];
    for (int j = 0; j < kRows; ++j) {
      inverse[j] = scale[j] > 0.f ? 1.f / scale[j] : 0.f;
      error[j] = 0.f;
    }
    for (int k = 0; k < kBlock; ++k) {
      for (int j = 0; j < kRows; ++j) {
        const float x = values[k * kRows + j];
        const float level = std::min(std::max(__builtin_rintf((x - minimum[j]) * inverse[j]), 0.f), 15.f);
        const float diff = scale[j] * level + minimum[j] - x;
        error[j] += weights[k][j] * diff * diff;
      }
    }
  };
  for (int j = 0; j < kRows; ++j) {
    fit.scale[j] = (hi[j] - lo[j]) / 15.f;
    fit.minimum[j] = lo[j];
  }
  error_of(fit.scale, fit.minimum, best_error);
  for (int step = 0; step <= 20; ++step) {
    const float spread = 14.f + 0.1f * static_cast<float>(step);
    float inverse[kRows], sw[kRows] = {}, sl[kRows] = {}, sl2[kRows] = {}, sx[kRows] = {}, sxl[kRows] = {};
    for (int j = 0; j < kRows; ++j) inverse[j] = hi[j] > lo[j] ? spread / (hi[j] - lo[j]) : 0.f;
    for (int k = 0; k < kBlock; ++k) {
      for (int j = 0; j < kRows; ++j) {
        const float x = values[k * kRows + j], w = weights[k][j];
        const float level = std::min(std::max(__builtin_rintf((x - lo[j]) * inverse[j]), 0.f), 15.f);
        sw[j] += w;
        sl[j] += w * level;
        sl2[j] += w * level * level;
        sx[j] += w * x;
        sxl[j] += w * x * level;
      }
    }
    float scale[kRows], minimum[kRows], error[kRows];
    for (int j = 0; j < kRows; ++j) {
      const float det = sw[j] * sl2[j] - sl[j] * sl[j];
      const bool solvable = det > 0.f;
      scale[j] = solvable ? (sw[j] * sxl[j] - sx[j] * sl[j]) / det : 0.f;
      minimum[j] = solvable ? (sl2[j] * sx[j] - sl[j] * sxl[j]) / det : 0.f;
    }
    error_of(scale, minimum, error);
    for (int j = 0; j < kRows; ++j) {
      if (scale[j] > 0.f && error[j] < best_error[j]) {
        best_error[j] = error[j];
        fit.scale[j] = scale[j];
        fit.minimum[j] = minimum[j];
      }
    }
  }
}

// Weights [out, in] (any float dtype) to the packed layout. Each block's scale and minimum
// (fit_tile_block) are rounded to fp16 first and the nibbles chosen against the rounded values, so
// unpacking gives exactly the weights the kernel multiplies by.
at::Tensor int4_pack(const at::Tensor& weight) {
  TORCH_CHECK(weight.dim() == 2 && weight.device().is_cpu(), "chatui int4: pack takes a 2-D CPU weight");
  const at::Tensor w = weight.to(at::kFloat).contiguous();
  const int64_t out_features = w.size(0), in_features = w.size(1);
  const int64_t tiles = round_up(out_features, kRows) / kRows;
  const int64_t blocks = round_up(in_features, kBlock) / kBlock;
  at::Tensor packed = at::zeros({tiles * blocks * kBlockBytes}, w.options().dtype(at::kByte));
  const float* source = w.data_ptr<float>();
  uint8_t* target = packed.data_ptr<uint8_t>();
  at::parallel_for(0, tiles, 1, [&](int64_t begin, int64_t end) {
    float values[kBlock * kRows];
    TileFit fit;
    for (int64_t tile = begin; tile < end; ++tile) {
      for (int64_t b = 0; b < blocks; ++b) {
        uint8_t* block = target + (tile * blocks + b) * kBlockBytes;
        c10::Half* scales = reinterpret_cast<c10::Half*>(block + kNibbleBytes);
        c10::Half* minimums = scales + kRows;
        const int64_t start = b * kBlock, count = std::min(in_features - start, kBlock);
        const int64_t rows = std::min(out_features - tile * kRows, kRows);
        for (int64_t n = 0; n < kRows; ++n) {  // transposed; padding repeats the block's first weight
          const float* row = source + std::min(tile * kRows + n, out_features - 1) * in_features + start;
          for (int64_t k = 0; k < kBlock; ++k) values[k * kRows + n] = row[k < count ? k : 0];
        }
        fit_tile_block(values, fit);
        for (int64_t n = 0; n < kRows; ++n) {
          uint8_t q[kBlock] = {};
          if (n >= rows) {
            scales[n] = c10::Half(0.f);
            minimums[n] = c10::Half(0.f);
          } else {
            const c10::Half d(fit.scale[n]);
            const c10::Half m(fit.minimum[n]);
            scales[n] = d;
            minimums[n] = m;
            const float step = static_cast<float>(d), base = static_cast<float>(m);
            for (int64_t k = 0; k < count; ++k) {
              const float level = step > 0.f ? std::nearbyint((values[k * kRows + n] - base) / step) : 0.f;
              q[k] = static_cast<uint8_t>(std::clamp(level, 0.f, 15.f));
            }
          }
          for (int64_t i = 0; i < 4; ++i) {
            for (int64_t t = 0; t < 4; ++t) {
              block[i * 64 + n * 4 + t] = static_cast<uint8_t>(q[4 * i + t] | (q[16 + 4 * i + t] << 4));
            }
          }
        }
      }
    }
  });
  return packed;
}

// The packed weights back to floats [out, in]: exactly what the kernel multiplies by.
at::Tensor int4_unpack(const at::Tensor& packed, int64_t out_features, int64_t in_features) {
  check_packed(packed, out_features, in_features);
  const int64_t tiles = round_up(out_features, kRows) / kRows;
  const int64_t blocks = round_up(in_features, kBlock) / kBlock;
  at::Tensor full = at::empty({tiles * kRows, blocks * kBlock}, packed.options().dtype(at::kFloat));
  const uint8_t* source = packed.data_ptr<uint8_t>();
  float* target = full.data_ptr<float>();
  const int64_t width = blocks * kBlock;
  at::parallel_for(0, tiles, 1, [&](int64_t begin, int64_t end) {
    for (int64_t tile = begin; tile < end; ++tile) {
      for (int64_t b = 0; b < blocks; ++b) {
        const uint8_t* block = source + (tile * blocks + b) * kBlockBytes;
        const c10::Half* scales = reinterpret_cast<const c10::Half*>(block + kNibbleBytes);
        const c10::Half* minimums = scales + kRows;
        for (int64_t n = 0; n < kRows; ++n) {
          float* row = target + (tile * kRows + n) * width + b * kBlock;
          const float d = static_cast<float>(scales[n]), m = static_cast<float>(minimums[n]);
          for (int64_t i = 0; i < 4; ++i) {
            for (int64_t t = 0; t < 4; ++t) {
              const uint8_t byte = block[i * 64 + n * 4 + t];
              row[4 * i + t] = d * static_cast<float>(byte & 0x0F) + m;
              row[16 + 4 * i + t] = d * static_cast<float>(byte >> 4) + m;
            }
          }
        }
      }
    }
  });
  return full.narrow(0, 0, out_features).narrow(1, 0, in_features).contiguous();
}

}  // namespace

TORCH_LIBRARY(chatui, m) {
  m.def("int4_linear(Tensor x, Tensor packed, Tensor? bias, int out_features, int in_features) -> Tensor");
  m.def("int4_linear_isa(Tensor x, Tensor packed, Tensor? bias, int out_features, int in_features, str isa) -> Tensor");
  m.def("int4_pack(Tensor weight) -> Tensor");
  m.def("int4_unpack(Tensor packed, int out_features, int in_features) -> Tensor");
  m.def("int4_isas() -> str[]", &int4_isas);
}

TORCH_LIBRARY_IMPL(chatui, CPU, m) {
  m.impl("int4_linear", &int4_linear);
  m.impl("int4_linear_isa", &int4_linear_isa);
  m.impl("int4_pack", &int4_pack);
  m.impl("int4_unpack", &int4_unpack);
}
