// Native step of the coordinatewise LSTM (paper, Section 2.1): the forward and the backward of the whole
// stack, with the matrix products and the elementwise work fused for blocks of 8 or 16 coordinates, so that each
// block stays in the core's cache. Same arithmetic as l2l_helpers/kernels/fused.py (tests compare them);
// built on first use by l2l_helpers/kernels/native.py; kernels/selection.py runs it where it is faster.
//
// Inside a block the coordinates are the lanes of one vector (GCC/Clang vector extensions), so every
// gate, state and product runs on full vectors whatever the hidden size.
//
// Layouts (float32, contiguous):
//   x (N, I)                 preprocessed gradients, the first layer's input
//   state (L, 2, N, H)       h and c of every layer before the step; new_state after it
//   saved (L, B, 4H, V)     per block b: i, f, g, o after their nonlinearities, lane-major
//   wt[l] (I_l + H + 1, 4H)  [W_ih, W_hh, b_ih + b_hh]^T of layer l (the backward reads its columns too)
//   w_out (H), b_out, scale  the output layer: update = (h_top . w_out + b_out) * scale
#include <ATen/Parallel.h>
#include <torch/extension.h>
#if defined(__SSE__)
#include <immintrin.h>  // x86 only: the non-temporal stores below; other CPUs use plain stores
#endif

#include <cstdint>
#include <vector>

namespace {

// Coordinates per block: the lanes of one vector register, 16 with AVX-512 (32 registers of 512 bits), 8 on
// CPUs with 256-bit vectors (AVX2: 16 registers) and elsewhere. The register tiles below are sized from it: a
// 16-lane block compiled for 256-bit registers splits every vector in two and spills its tiles to the stack
// (measured 4x slower). -DL2L_LANES=8|16 overrides it, -DL2L_STREAM=0 turns the non-temporal stores off.
#if defined(L2L_LANES)
constexpr int V = L2L_LANES;
#elif defined(__AVX512F__)
constexpr int V = 16;
#else
constexpr int V = 8;
#endif
#if !defined(L2L_STREAM)
#define L2L_STREAM 1
#endif
constexpr bool WIDE = V == 16;  // 32 vector registers (AVX-512) rather than 16
typedef float vf __attribute__((vector_size(4 * V)));
typedef std::int32_t vi __attribute__((vector_size(4 * V)));
typedef float vfu __attribute__((vector_size(4 * V), aligned(4)));

inline vf load(const float* p) { return *reinterpret_cast<const vfu*>(p); }
inline void store(float* p, vf v) { *reinterpret_cast<vfu*>(p) = v; }
inline vf splat(float s) { return vf{} + s; }

// Store V floats at p bypassing the cache (non-temporal), as wide as p's alignment allows (the state's rows
// are 16-byte aligned at least; anything else takes a plain store). For the outputs only read again by a later
// call (new state, saved gates, d_state): a plain store first reads each line into the cache, then writes it
// back, twice the memory traffic of a streamed one. Callers issue sfence() before their outputs are read.
inline void stream(float* p, vf v) {
#if L2L_STREAM && defined(__AVX512F__)
  if ((reinterpret_cast<std::uintptr_t>(p) & 63) == 0) {
    _mm512_stream_ps(p, reinterpret_cast<__m512&>(v));
    return;
  }
#endif
#if L2L_STREAM && defined(__AVX__)
  if ((reinterpret_cast<std::uintptr_t>(p) & 31) == 0) {
    for (int q = 0; q < V; q += 8) _mm256_stream_ps(p + q, _mm256_loadu_ps(reinterpret_cast<const float*>(&v) + q));
    return;
  }
#endif
#if L2L_STREAM && defined(__SSE__)
  if ((reinterpret_cast<std::uintptr_t>(p) & 15) == 0) {
    for (int q = 0; q < V; q += 4) _mm_stream_ps(p + q, _mm_loadu_ps(reinterpret_cast<const float*>(&v) + q));
    return;
  }
#endif
  *reinterpret_cast<vfu*>(p) = v;
}
inline void sfence() {
#if defined(__SSE__)
  _mm_sfence();
#endif
}
inline void add_to(float* p, vf v) { store(p, load(p) + v); }

// exp on a vector: Cephes' range reduction x = n ln 2 + r and degree-6 polynomial (about 1 ulp), x clamped
// to [-87, 88] so that 2^n stays a normal float.
inline vf vexp(vf x) {
  x = x < splat(-87.0f) ? splat(-87.0f) : x;
  x = x > splat(88.0f) ? splat(88.0f) : x;
  const vf t = x * 1.44269504088896341f + 0.5f;
  vf n = __builtin_convertvector(__builtin_convertvector(t, vi), vf);  // truncation ...
  n = n > t ? n - 1.0f : n;                                          // ... made a floor
  const vf r = x - n * 0.693359375f + n * 2.12194440e-4f;
  vf p = splat(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const vf e = p * r * r + r + 1.0f;
  const vi bits = (__builtin_convertvector(n, vi) + 127) << 23;
  return e * reinterpret_cast<const vf&>(bits);
}

inline vf sigmoid(vf z) { return 1.0f / (1.0f + vexp(-z)); }
inline vf tanh_(vf z) { return 2.0f / (1.0f + vexp(-2.0f * z)) - 1.0f; }

// rows (nv coordinates x W, row-major) -> lanes t[W][V]; missing lanes are zero
template <int W>
inline void to_lanes(const float* __restrict rows, int nv, float (*__restrict t)[V]) {
  if (nv == V) {
    for (int w = 0; w < W; ++w)
      for (int v = 0; v < V; ++v) t[w][v] = rows[v * W + w];
    return;
  }
  for (int w = 0; w < W; ++w)
    for (int v = 0; v < V; ++v) t[w][v] = v < nv ? rows[v * W + w] : 0.0f;
}
template <int W>
inline void from_lanes(const float (*__restrict t)[V], int nv, float* __restrict rows) {
  if (nv == V) {  // a whole block: 16 rows of W floats, contiguous; transposed here, then streamed out
    alignas(64) float buffer[V * W];
    for (int v = 0; v < V; ++v)
      for (int w = 0; w < W; ++w) buffer[v * W + w] = t[w][v];
    for (int q = 0; q < W; ++q) stream(rows + q * V, load(buffer + q * V));
    return;
  }
  for (int v = 0; v < nv; ++v)
    for (int w = 0; w < W; ++w) rows[v * W + w] = t[w][v];
}

struct Net {
  int L;
  int64_t N;
  std::vector<const float*> wt;  // per layer, see the header
  const float* w_out;
  float b_out, scale;
};

// ----------------------------------------------------------------------------------------------- forward

// One layer on one block. xT[0:I] holds the input in lanes; the rest of xT is filled here.
template <int I, int H>
inline void layer_forward(float (*xT)[V], const float* hp, const float* cp, int nv, const float* wt, float (*hT)[V],
                          float* h_rows, float* c_rows, float* saved) {
  constexpr int G = 4 * H, K = I + H, JT = WIDE ? 16 : 8;  // JT accumulators + an input + a weight in registers
  static_assert(G % JT == 0, "4H must be a multiple of the tile");
  to_lanes<H>(hp, nv, xT + I);
  alignas(64) float z[G][V];
  for (int j0 = 0; j0 < G; j0 += JT) {
    vf acc[JT];
    for (int jj = 0; jj < JT; ++jj) acc[jj] = splat(wt[K * G + j0 + jj]);
    for (int k = 0; k < K; ++k) {
      const vf xk = load(xT[k]);
      const float* wk = wt + k * G + j0;
      for (int jj = 0; jj < JT; ++jj) acc[jj] += wk[jj] * xk;
    }
    for (int jj = 0; jj < JT; ++jj) store(z[j0 + jj], acc[jj]);
  }
  alignas(64) float cpT[H][V], cT[H][V];
  to_lanes<H>(cp, nv, cpT);
  for (int u = 0; u < H; ++u) {
    const vf i = sigmoid(load(z[u])), f = sigmoid(load(z[H + u])), g = tanh_(load(z[2 * H + u])),
             o = sigmoid(load(z[3 * H + u]));
    const vf c = f * load(cpT[u]) + i * g;
    const vf tc = tanh_(c);
    store(cT[u], c);
    store(hT[u], o * tc);
    if (saved) {
      stream(saved + u * V, i);
      stream(saved + (H + u) * V, f);
      stream(saved + (2 * H + u) * V, g);
      stream(saved + (3 * H + u) * V, o);
    }
  }
  from_lanes<H>(hT, nv, h_rows);
  from_lanes<H>(cT, nv, c_rows);
}

template <int I0, int H>
void forward_block(const Net& net, int64_t blk, const float* x, const float* state, float* new_state, float* saved,
                   float* update) {
  const int64_t n0 = blk * V, plane = net.N * H;
  const int nv = static_cast<int>(std::min<int64_t>(V, net.N - n0));
  const int64_t nblocks = (net.N + V - 1) / V;
  alignas(64) float x0[I0 + H][V], xl[H + H][V], hT[H][V];
  to_lanes<I0>(x + n0 * I0, nv, x0);
  for (int l = 0; l < net.L; ++l) {
    float* sv = saved ? saved + (l * nblocks + blk) * 4 * H * V : nullptr;
    const float* hp = state + 2 * l * plane + n0 * H;
    const float* cp = state + (2 * l + 1) * plane + n0 * H;
    float* h = new_state + 2 * l * plane + n0 * H;
    float* c = new_state + (2 * l + 1) * plane + n0 * H;
    if (l == 0) {
      layer_forward<I0, H>(x0, hp, cp, nv, net.wt[0], hT, h, c, sv);
    } else {
      for (int k = 0; k < H; ++k) store(xl[k], load(hT[k]));
      layer_forward<H, H>(xl, hp, cp, nv, net.wt[l], hT, h, c, sv);
    }
  }
  vf u = splat(net.b_out);
  for (int k = 0; k < H; ++k) u += net.w_out[k] * load(hT[k]);
  u *= net.scale;
  for (int v = 0; v < nv; ++v) update[n0 + v] = u[v];
}

// ---------------------------------------------------------------------------------------------- backward

constexpr int CB = 16;  // blocks per chunk: the weight gradients of a chunk are summed in registers

template <int K>
constexpr int padded() {  // K + 1 rows (inputs, hidden, the bias's ones) rounded up to the k-tile
  return (K + 1 + 2) / 3 * 3;
}

// Backward of one layer on one block: from dh (lanes, H) and dc_next (rows) to dz (lanes, 4H), the input
// gradients (d_in lanes, I, when asked) and d h_prev, d c_prev (rows, when d_hp is set).
template <int I, int H>
inline void layer_backward(const float* saved, const float* cp, const float* dc_next, int nv, const float* wt,
                           const float (*dh)[V], float (*dz)[V], float (*d_in)[V], float* d_hp, float* d_cp) {
  constexpr int G = 4 * H, K = I + H;
  alignas(64) float cpT[H][V], dcn[H][V], dcp[H][V];
  to_lanes<H>(cp, nv, cpT);
  to_lanes<H>(dc_next, nv, dcn);
  for (int u = 0; u < H; ++u) {
    const vf i = load(saved + u * V), f = load(saved + (H + u) * V), g = load(saved + (2 * H + u) * V),
             o = load(saved + (3 * H + u) * V);
    const vf tc = tanh_(f * load(cpT[u]) + i * g);  // recomputed: cheaper than storing and reading it back
    const vf d_h = load(dh[u]);
    const vf dc = load(dcn[u]) + d_h * o * (1.0f - tc * tc);
    store(dz[u], dc * g * i * (1.0f - i));
    store(dz[H + u], dc * load(cpT[u]) * f * (1.0f - f));
    store(dz[2 * H + u], dc * i * (1.0f - g * g));
    store(dz[3 * H + u], d_h * tc * o * (1.0f - o));
    store(dcp[u], dc * f);
  }
  if (d_cp) from_lanes<H>(dcp, nv, d_cp);
  // input gradients: dxh[k] = sum_j wt[k][j] dz[j], for k in [0, I) when d_in, [I, K) when d_hp
  const int k_begin = d_in ? 0 : I, k_end = d_hp ? K : I;
  if (k_begin >= k_end) return;
  alignas(64) float dx[K][V];
  constexpr int KT = 10;
  for (int k0 = k_begin; k0 < k_end; k0 += KT) {
    const int kn = std::min(KT, k_end - k0);
    vf acc[KT];
    for (int kk = 0; kk < KT; ++kk) acc[kk] = vf{};
    for (int j = 0; j < G; ++j) {
      const vf d = load(dz[j]);
      const float* wj = wt + k0 * G + j;  // column j of wt, from row k0
      if (kn == KT) {
        for (int kk = 0; kk < KT; ++kk) acc[kk] += wj[kk * G] * d;
      } else {
        for (int kk = 0; kk < kn; ++kk) acc[kk] += wj[kk * G] * d;
      }
    }
    for (int kk = 0; kk < kn; ++kk) store(dx[k0 + kk], acc[kk]);
  }
  if (d_in)
    for (int k = 0; k < I; ++k) store(d_in[k], load(dx[k]));
  if (d_hp) from_lanes<H>(dx + I, nv, d_hp);
}

// acc[j][k] (lanes) += sum over the chunk's blocks of dz[b][j] * xT[b][k]; rows of xT padded with the ones
// row (k = K) and zeros up to KP.
template <int G, int KP>
inline void weight_grads(const float (*dz)[G][V], const float (*xT)[KP][V], int nb, float* acc) {
  constexpr int JT = WIDE ? 8 : 4, KT = 3;  // JT x KT accumulators + KT inputs + one dz in registers
  static_assert(G % JT == 0 && KP % KT == 0, "tile sizes");
  for (int j0 = 0; j0 < G; j0 += JT)
    for (int k0 = 0; k0 < KP; k0 += KT) {
      vf a[JT][KT];
      for (int jj = 0; jj < JT; ++jj)
        for (int kk = 0; kk < KT; ++kk) a[jj][kk] = vf{};
      for (int b = 0; b < nb; ++b) {
        vf xk[KT];
        for (int kk = 0; kk < KT; ++kk) xk[kk] = load(xT[b][k0 + kk]);
        for (int jj = 0; jj < JT; ++jj) {
          const vf d = load(dz[b][j0 + jj]);
          for (int kk = 0; kk < KT; ++kk) a[jj][kk] += d * xk[kk];
        }
      }
      for (int jj = 0; jj < JT; ++jj)
        for (int kk = 0; kk < KT; ++kk) add_to(acc + ((j0 + jj) * KP + k0 + kk) * V, a[jj][kk]);
    }
}

template <int I0, int H>
struct Backward {
  static constexpr int G = 4 * H, K0 = I0 + H, K1 = 2 * H, KP0 = padded<K0>(), KP1 = padded<K1>();
  // per thread: lane-partial weight gradients of every layer, then d w_out (H lanes) and d b_out (1)
  static constexpr int64_t scratch_size = int64_t(CB) * (H + G + KP0 + KP1) * V;  // per thread, see chunk()
  static int64_t acc_size(int L) { return (int64_t(G) * KP0 + int64_t(L - 1) * G * KP1 + H + 1) * V; }

  static void chunk(const Net& net, int64_t blk0, int nb, const float* x, const float* state, const float* new_state,
                    const float* saved, const float* d_update, const float* d_new_state, float* d_state, float* acc,
                    float* scratch) {
    const int64_t plane = net.N * H, nblocks = (net.N + V - 1) / V;
    auto dh = reinterpret_cast<float (*)[H][V]>(scratch);
    auto dz = reinterpret_cast<float (*)[G][V]>(scratch + CB * H * V);
    auto xT0 = reinterpret_cast<float (*)[KP0][V]>(scratch + CB * (H + G) * V);
    auto xT1 = reinterpret_cast<float (*)[KP1][V]>(scratch + CB * (H + G + KP0) * V);
    alignas(64) float d_in[H][V];
    alignas(64) float d_wout[H][V] = {}, d_bout[V] = {};
    // the output layer and the gradient reaching the top layer's h
    for (int b = 0; b < nb; ++b) {
      const int64_t n0 = (blk0 + b) * V;
      const int nv = static_cast<int>(std::min<int64_t>(V, net.N - n0));
      alignas(64) float top[H][V], dup[V] = {};
      to_lanes<H>(new_state + 2 * (net.L - 1) * plane + n0 * H, nv, top);
      to_lanes<H>(d_new_state + 2 * (net.L - 1) * plane + n0 * H, nv, dh[b]);
      for (int v = 0; v < nv; ++v) dup[v] = d_update[n0 + v] * net.scale;
      const vf du = load(dup);
      store(d_bout, load(d_bout) + du);
      for (int k = 0; k < H; ++k) {
        store(d_wout[k], load(d_wout[k]) + du * load(top[k]));
        store(dh[b][k], load(dh[b][k]) + du * net.w_out[k]);
      }
    }
    float* out_acc = acc + (int64_t(G) * KP0 + int64_t(net.L - 1) * G * KP1) * V;
    for (int k = 0; k < H; ++k) add_to(out_acc + k * V, load(d_wout[k]));
    add_to(out_acc + H * V, load(d_bout));
    for (int l = net.L - 1; l >= 0; --l) {
      float* acc_l = acc + (l == 0 ? 0 : (int64_t(G) * KP0 + int64_t(l - 1) * G * KP1) * V);
      for (int b = 0; b < nb; ++b) {
        const int64_t blk = blk0 + b, n0 = blk * V;
        const int nv = static_cast<int>(std::min<int64_t>(V, net.N - n0));
        const float* sv = saved + (l * nblocks + blk) * 4 * H * V;
        const float* hp = state + 2 * l * plane + n0 * H;
        const float* cp = state + (2 * l + 1) * plane + n0 * H;
        const float* dcn = d_new_state + (2 * l + 1) * plane + n0 * H;
        float* d_hp = d_state ? d_state + 2 * l * plane + n0 * H : nullptr;
        float* d_cp = d_state ? d_state + (2 * l + 1) * plane + n0 * H : nullptr;
        if (l == 0) {
          to_lanes<I0>(x + n0 * I0, nv, xT0[b]);
          to_lanes<H>(hp, nv, xT0[b] + I0);
          for (int k = K0; k < KP0; ++k) store(xT0[b][k], splat(k == K0 ? 1.0f : 0.0f));
          layer_backward<I0, H>(sv, cp, dcn, nv, net.wt[0], dh[b], dz[b], nullptr, d_hp, d_cp);
        } else {
          to_lanes<H>(new_state + 2 * (l - 1) * plane + n0 * H, nv, xT1[b]);
          to_lanes<H>(hp, nv, xT1[b] + H);
          for (int k = K1; k < KP1; ++k) store(xT1[b][k], splat(k == K1 ? 1.0f : 0.0f));
          layer_backward<H, H>(sv, cp, dcn, nv, net.wt[l], dh[b], dz[b], d_in, d_hp, d_cp);
          alignas(64) float below[H][V];
          to_lanes<H>(d_new_state + 2 * (l - 1) * plane + n0 * H, nv, below);
          for (int k = 0; k < H; ++k) store(dh[b][k], load(d_in[k]) + load(below[k]));
        }
      }
      if (l == 0)
        weight_grads<G, KP0>(dz, xT0, nb, acc_l);
      else
        weight_grads<G, KP1>(dz, xT1, nb, acc_l);
    }
  }
};

void check(const torch::Tensor& t, const char* name) {
  TORCH_CHECK(t.scalar_type() == torch::kFloat32, name, " must be float32");
  TORCH_CHECK(t.device().is_cpu(), name, " must be on the CPU");
  TORCH_CHECK(t.is_contiguous(), name, " must be contiguous");
}

Net make_net(const torch::Tensor& x, const torch::Tensor& state, const std::vector<torch::Tensor>& wt,
             const torch::Tensor& w_out, double b_out, double scale) {
  check(x, "x");
  check(state, "state");
  check(w_out, "w_out");
  TORCH_CHECK(x.dim() == 2, "x must have shape (N, inputs)");
  TORCH_CHECK(state.dim() == 4 && state.size(1) == 2 && state.size(2) == x.size(0),
              "state must have shape (L, 2, N, H)");
  const int64_t N = x.size(0), L = state.size(0), H = state.size(3), I0 = x.size(1);
  TORCH_CHECK(H == 20 && (I0 == 1 || I0 == 2), "the native LSTM step is built for 20 hidden units, 1 or 2 inputs");
  TORCH_CHECK(int64_t(wt.size()) == L, "one weight matrix per layer");
  TORCH_CHECK(w_out.numel() == H, "w_out must have H elements");
  Net net{static_cast<int>(L), N, {}, w_out.data_ptr<float>(), static_cast<float>(b_out), static_cast<float>(scale)};
  for (int64_t l = 0; l < L; ++l) {
    const int64_t K = (l == 0 ? I0 : H) + H;
    check(wt[l], "wt");
    TORCH_CHECK(wt[l].dim() == 2 && wt[l].size(0) == K + 1 && wt[l].size(1) == 4 * H, "wt[", l,
                "] must have shape (", K + 1, ", 4H)");
    net.wt.push_back(wt[l].data_ptr<float>());
  }
  return net;
}

template <int I0, int H>
void run_forward(const Net& net, const float* x, const float* state, float* new_state, float* saved, float* update) {
  const int64_t nblocks = (net.N + V - 1) / V;
  at::parallel_for(0, nblocks, 8, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) forward_block<I0, H>(net, b, x, state, new_state, saved, update);
    sfence();
  });
}

template <int I0, int H>
std::vector<torch::Tensor> run_backward(const Net& net, const torch::Tensor& x, const float* state,
                                        const float* new_state, const float* saved, const float* d_update,
                                        const float* d_new_state, float* d_state) {
  using B = Backward<I0, H>;
  const int64_t nblocks = (net.N + V - 1) / V, nchunks = (nblocks + CB - 1) / CB;
  const int threads = at::get_num_threads();
  torch::Tensor acc = torch::zeros({threads, B::acc_size(net.L)}, x.options());
  float* ap = acc.data_ptr<float>();
  const float* xp = x.data_ptr<float>();
  at::parallel_for(0, nchunks, 1, [&](int64_t begin, int64_t end) {
    float* mine = ap + at::get_thread_num() * B::acc_size(net.L);
    std::vector<float> buffer(B::scratch_size + V);  // aligned to 64 bytes below
    float* scratch = buffer.data() + (V - reinterpret_cast<std::uintptr_t>(buffer.data()) / sizeof(float) % V) % V;
    for (int64_t c = begin; c < end; ++c) {
      const int nb = static_cast<int>(std::min<int64_t>(CB, nblocks - c * CB));
      B::chunk(net, c * CB, nb, xp, state, new_state, saved, d_update, d_new_state, d_state, mine,
               scratch);
    }
    sfence();
  });
  torch::Tensor total = acc.sum(0);  // (acc_size): threads summed; the lanes are summed below
  std::vector<torch::Tensor> out;
  int64_t offset = 0;
  for (int l = 0; l < net.L; ++l) {
    const int K = (l == 0 ? B::K0 : B::K1), KP = (l == 0 ? B::KP0 : B::KP1);
    auto g = total.narrow(0, offset, int64_t(B::G) * KP * V).view({B::G, KP, V}).sum(2);  // (4H, KP)
    out.push_back(g.narrow(1, 0, K + 1).t().contiguous());  // (K + 1, 4H)
    offset += int64_t(B::G) * KP * V;
  }
  out.push_back(total.narrow(0, offset, H * V).view({H, V}).sum(1));
  out.push_back(total.narrow(0, offset + H * V, V).sum().reshape({1}));
  return out;
}

}  // namespace

// Returns (update (N,), new_state (L, 2, N, H), saved for the backward or an empty tensor).
// in_place: the new state is written over state (and returned): each block reads its rows of a layer's h and c
// before it writes them, and no other block touches them. For inference, where the caller drops the old state:
// a fresh state is 80 floats per coordinate (400 MB for 40 MNIST networks of 40 hidden units), and a buffer that
// large comes from the system new on every step, its pages faulted in and zeroed (measured 2x the step's time).
std::vector<torch::Tensor> lstm_forward(const torch::Tensor& x, const torch::Tensor& state,
                                        const std::vector<torch::Tensor>& wt, const torch::Tensor& w_out,
                                        double b_out, double scale, bool save, bool in_place) {
  const Net net = make_net(x, state, wt, w_out, b_out, scale);
  TORCH_CHECK(!(save && in_place), "the backward needs the old state: save and in_place exclude each other");
  const int64_t H = state.size(3), nblocks = (net.N + V - 1) / V;
  auto new_state = in_place ? state : torch::empty_like(state);
  auto update = torch::empty({net.N}, x.options());
  auto saved = torch::empty({save ? net.L * nblocks * 4 * H * V : 0}, x.options());
  float* sp = save ? saved.data_ptr<float>() : nullptr;
  if (x.size(1) == 2)
    run_forward<2, 20>(net, x.data_ptr<float>(), state.data_ptr<float>(), new_state.data_ptr<float>(), sp,
                       update.data_ptr<float>());
  else
    run_forward<1, 20>(net, x.data_ptr<float>(), state.data_ptr<float>(), new_state.data_ptr<float>(), sp,
                       update.data_ptr<float>());
  return {update, new_state, saved};
}

// Returns (d_state or an empty tensor, d_wt per layer (I_l + H + 1, 4H), d_w_out (H,), d_b_out (1,)).
std::vector<torch::Tensor> lstm_backward(const torch::Tensor& x, const torch::Tensor& state,
                                         const torch::Tensor& new_state, const torch::Tensor& saved,
                                         const std::vector<torch::Tensor>& wt, const torch::Tensor& w_out,
                                         double scale, const torch::Tensor& d_update, const torch::Tensor& d_new_state,
                                         bool need_d_state) {
  const Net net = make_net(x, state, wt, w_out, 0.0, scale);
  for (const auto* t : {&new_state, &saved, &d_update, &d_new_state}) check(*t, "backward input");
  const int64_t H = state.size(3), nblocks = (net.N + V - 1) / V;
  TORCH_CHECK(new_state.sizes() == state.sizes() && d_new_state.sizes() == state.sizes(), "state shapes differ");
  TORCH_CHECK(saved.numel() == net.L * nblocks * 4 * H * V, "saved tensors of another step");
  TORCH_CHECK(d_update.numel() == net.N, "d_update must have N elements");
  auto d_state = need_d_state ? torch::empty_like(state) : torch::empty({0}, x.options());
  float* dsp = need_d_state ? d_state.data_ptr<float>() : nullptr;
  auto grads = x.size(1) == 2
                   ? run_backward<2, 20>(net, x, state.data_ptr<float>(), new_state.data_ptr<float>(),
                                         saved.data_ptr<float>(), d_update.data_ptr<float>(),
                                         d_new_state.data_ptr<float>(), dsp)
                   : run_backward<1, 20>(net, x, state.data_ptr<float>(), new_state.data_ptr<float>(),
                                         saved.data_ptr<float>(), d_update.data_ptr<float>(),
                                         d_new_state.data_ptr<float>(), dsp);
  grads.insert(grads.begin(), d_state);
  return grads;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.attr("lanes") = V;  // coordinates per block, as compiled
  m.attr("streaming") = bool(L2L_STREAM);
  m.def("forward", &lstm_forward, "coordinatewise LSTM step, forward");
  m.def("backward", &lstm_backward, "coordinatewise LSTM step, backward");
}
