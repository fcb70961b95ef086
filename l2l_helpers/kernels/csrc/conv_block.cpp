// The end of one block of the paper's convnet (Section 3.3): batch normalization in training mode, ReLU and 2x2
// max pooling (stride 2, floor), forward and backward, fused. PyTorch runs them as five passes over the block's
// maps forward and five backward (statistics, normalization, ReLU, pooling with int64 indices, then each
// backward); here the forward reads the maps twice and writes only the pooled quarter and one byte per
// pooled value, the backward reads the pooled grid and the maps once and writes the maps' gradient.
// Same formulas as F.batch_norm / F.relu / F.max_pool2d (tests compare them); l2l_helpers/kernels/conv_block.py.
//
// Layouts (float32, contiguous, NCHW): y (B, C, S, S) the convolution's output; out (B, C, S/2, S/2) the pooled
// ReLU of the normalized maps; idx (B, C, S/2, S/2) uint8, which of the window's four values (0: top left,
// 1: top right, 2: bottom left, 3: bottom right) is the first maximum. With S odd the last row and column are
// in the statistics but in no window, as in max_pool2d's floor mode.
#include <ATen/Parallel.h>
#include <torch/extension.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace {

void check_maps(const torch::Tensor& t, const char* name) {
  TORCH_CHECK(t.scalar_type() == torch::kFloat32, name, " must be float32");
  TORCH_CHECK(t.device().is_cpu(), name, " must be on the CPU");
  TORCH_CHECK(t.is_contiguous(), name, " must be contiguous (NCHW)");
}

// Sum and sum of squares of one map (n floats, at most a few thousand) in float lanes, one pass; the maps' sums
// are added in double, and the variance is E[(y - shift)^2] - (E[y] - shift)^2 around the first map's first
// value, so that a large mean does not cancel the variance's digits.
inline void plane_sums(const float* p, int64_t n, float shift, double& sum, double& squares) {
  float s = 0.0f, q = 0.0f;
#pragma omp simd reduction(+ : s, q)
  for (int64_t i = 0; i < n; ++i) {
    const float d = p[i] - shift;
    s += d;
    q += d * d;
  }
  sum += s;
  squares += q;
}

// The loops below are functions of plain values, called from at::parallel_for's lambdas: a lambda that captures
// by reference reads every pointer and size through the closure inside its loops, and a one-byte store (idx) may
// alias any of them, so the compiler reloads them each iteration and cannot use vector lanes (measured: 10-20x
// slower loops). Parameters are locals that nothing aliases.

// Statistics of channels [c0, c1): mean and invstd.
void channel_stats(int64_t c0, int64_t c1, const float* yp, int64_t B, int64_t C, int64_t plane, double eps,
                   float* mp, float* ip) {
  const double n = double(B) * plane;
  for (int64_t c = c0; c < c1; ++c) {
    const float shift = yp[c * plane];
    double s = 0.0, q = 0.0;
    for (int64_t b = 0; b < B; ++b) plane_sums(yp + (b * C + c) * plane, plane, shift, s, q);
    const double centred = s / n, var = std::max(q / n - centred * centred, 0.0);
    mp[c] = float(shift + centred);
    ip[c] = float(1.0 / std::sqrt(var + eps));
  }
}

// Normalization, ReLU and pooling of maps [q0, q1) (map q = b * C + c).
void pool_maps(int64_t q0, int64_t q1, const float* yp, const float* mp, const float* ip, const float* gp,
               const float* bp, int64_t C, int64_t S, float* op, std::uint8_t* xp) {
  const int64_t P = S / 2, plane = S * S;
  for (int64_t q = q0; q < q1; ++q) {
    const int64_t c = q % C;
    const float a = ip[c] * gp[c], shift = bp[c] - mp[c] * a;  // z = y * a + shift, as batch_norm computes it
    const float* src = yp + q * plane;
    float* dst = op + q * P * P;
    std::uint8_t* which = xp + q * P * P;
    for (int64_t oy = 0; oy < P; ++oy) {
      const float* top = src + 2 * oy * S;
      const float* bottom = top + S;
      float* row = dst + oy * P;
      std::uint8_t* row_which = which + oy * P;
      // Selects instead of branches (a window's maximum is where random maps put it: branches mispredict half
      // the time), so the loop runs in vector lanes; the same comparisons in the same order.
#pragma omp simd
      for (int64_t ox = 0; ox < P; ++ox) {
        const float z0 = top[2 * ox] * a + shift, z1 = top[2 * ox + 1] * a + shift;
        const float z2 = bottom[2 * ox] * a + shift, z3 = bottom[2 * ox + 1] * a + shift;
        const int g1 = z1 > z0;
        float best = g1 ? z1 : z0;
        int k = g1;
        const int g2 = z2 > best;
        best = g2 ? z2 : best;
        k += g2 * (2 - k);  // k = g2 ? 2 : k, in arithmetic: the scalar code (maps narrower than the vector
        const int g3 = z3 > best;  // lanes) otherwise gets a branch here, mispredicted half the time
        best = g3 ? z3 : best;
        k += g3 * (3 - k);
        row[ox] = best > 0.0f ? best : 0.0f;
        row_which[ox] = static_cast<std::uint8_t>(k);
      }
    }
  }
}

// Sums of dz and dz * xhat over channels [c0, c1): dbeta and dgamma.
void channel_grads(int64_t c0, int64_t c1, const float* dp, const float* yp, const float* mp, const float* ip,
                   const float* op, const std::uint8_t* xp, int64_t B, int64_t C, int64_t S, float* dgp,
                   float* dbp) {
  const int64_t P = S / 2, plane = S * S;
  const int64_t offset[4] = {0, 1, S, S + 1};  // of each window position from the window's top left
  for (int64_t c = c0; c < c1; ++c) {
    double sdz = 0.0, sdzx = 0.0;
    const float m = mp[c], is = ip[c];
    for (int64_t b = 0; b < B; ++b) {
      const int64_t q = b * C + c;
      for (int64_t oy = 0; oy < P; ++oy)
        for (int64_t ox = 0; ox < P; ++ox) {
          // Windows whose output the ReLU zeroed add an exact 0.0 (a select, not a mispredicted branch): the
          // sums take the same values in the same order as when they were skipped.
          const int64_t k = q * P * P + oy * P + ox;
          const bool on = op[k] > 0.0f;
          const float y_at = yp[q * plane + 2 * oy * S + 2 * ox + offset[xp[k]]];
          const float g = on ? dp[k] : 0.0f;
          sdz += g;
          sdzx += double(g) * ((y_at - m) * is);
        }
    }
    dbp[c] = float(sdz);
    dgp[c] = float(sdzx);
  }
}

// dy of maps [q0, q1): batch normalization's backward everywhere, plus the pooled gradient at each maximum.
void map_grads(int64_t q0, int64_t q1, const float* dp, const float* yp, const float* gp, const float* mp,
               const float* ip, const float* op, const std::uint8_t* xp, const float* dgp, const float* dbp,
               int64_t B, int64_t C, int64_t S, float* dyp) {
  const int64_t P = S / 2, plane = S * S;
  const int64_t offset[4] = {0, 1, S, S + 1};
  const double n = double(B) * plane;
  for (int64_t q = q0; q < q1; ++q) {
    const int64_t c = q % C;
    const float k1 = gp[c] * ip[c], m1 = float(dbp[c] / n), m2 = float(dgp[c] / n), m = mp[c], is = ip[c];
    const float* src = yp + q * plane;
    float* dst = dyp + q * plane;
#pragma omp simd
    for (int64_t i = 0; i < plane; ++i) dst[i] = k1 * (0.0f - m1 - (src[i] - m) * is * m2);
    const float* g_row = dp + q * P * P;
    const float* o_row = op + q * P * P;
    const std::uint8_t* w_row = xp + q * P * P;
    for (int64_t oy = 0; oy < P; ++oy)
      for (int64_t ox = 0; ox < P; ++ox) {
        const int64_t k = oy * P + ox;
        float& at = dst[2 * oy * S + 2 * ox + offset[w_row[k]]];
        at = o_row[k] > 0.0f ? at + k1 * g_row[k] : at;  // a select, not a branch; the same (fused) arithmetic
      }
  }
}

}  // namespace

// Returns (out, mean (C,), invstd (C,), idx): invstd = 1 / sqrt(biased variance + eps), as batch_norm saves it.
std::vector<torch::Tensor> bn_relu_pool_forward(const torch::Tensor& y, const torch::Tensor& gamma,
                                                const torch::Tensor& beta, double eps) {
  check_maps(y, "y");
  check_maps(gamma, "gamma");
  check_maps(beta, "beta");
  TORCH_CHECK(y.dim() == 4 && y.size(2) == y.size(3) && y.size(2) >= 2, "y must have shape (B, C, S, S), S >= 2");
  const int64_t B = y.size(0), C = y.size(1), S = y.size(2), P = S / 2, plane = S * S;
  TORCH_CHECK(gamma.numel() == C && beta.numel() == C, "gamma and beta must have one value per channel");
  auto out = torch::empty({B, C, P, P}, y.options());
  auto idx = torch::empty({B, C, P, P}, y.options().dtype(torch::kUInt8));
  auto mean = torch::empty({C}, y.options()), invstd = torch::empty({C}, y.options());
  const float *yp = y.data_ptr<float>(), *gp = gamma.data_ptr<float>(), *bp = beta.data_ptr<float>();
  float *mp = mean.data_ptr<float>(), *ip = invstd.data_ptr<float>(), *op = out.data_ptr<float>();
  std::uint8_t* xp = idx.data_ptr<std::uint8_t>();
  at::parallel_for(0, C, 1, [&](int64_t c0, int64_t c1) { channel_stats(c0, c1, yp, B, C, plane, eps, mp, ip); });
  at::parallel_for(0, B * C, 4, [&](int64_t q0, int64_t q1) { pool_maps(q0, q1, yp, mp, ip, gp, bp, C, S, op, xp); });
  return {out, mean, invstd, idx};
}

// Returns (dy, dgamma, dbeta). The gradient reaches a map only through its window's maximum, where that is
// positive (ReLU); batch normalization's backward then spreads it over the whole channel:
// dy = gamma * invstd * (dz - mean(dz) - xhat * mean(dz * xhat)), xhat = (y - mean) * invstd.
std::vector<torch::Tensor> bn_relu_pool_backward(const torch::Tensor& dout, const torch::Tensor& y,
                                                 const torch::Tensor& gamma, const torch::Tensor& mean,
                                                 const torch::Tensor& invstd, const torch::Tensor& idx,
                                                 const torch::Tensor& out) {
  for (const auto* t : {&dout, &y, &gamma, &mean, &invstd, &out}) check_maps(*t, "backward input");
  TORCH_CHECK(idx.is_contiguous() && idx.scalar_type() == torch::kUInt8, "idx must be contiguous uint8");
  const int64_t B = y.size(0), C = y.size(1), S = y.size(2), P = S / 2;
  TORCH_CHECK(dout.sizes() == out.sizes() && idx.sizes() == out.sizes() && out.size(2) == P,
              "dout, idx and out must have the pooled shape of y");
  const float *dp = dout.data_ptr<float>(), *yp = y.data_ptr<float>(), *gp = gamma.data_ptr<float>();
  const float *mp = mean.data_ptr<float>(), *ip = invstd.data_ptr<float>(), *op = out.data_ptr<float>();
  const std::uint8_t* xp = idx.data_ptr<std::uint8_t>();
  auto dgamma = torch::empty({C}, y.options()), dbeta = torch::empty({C}, y.options());
  float *dgp = dgamma.data_ptr<float>(), *dbp = dbeta.data_ptr<float>();
  at::parallel_for(0, C, 1, [&](int64_t c0, int64_t c1) {
    channel_grads(c0, c1, dp, yp, mp, ip, op, xp, B, C, S, dgp, dbp);
  });
  auto dy = torch::empty_like(y);
  float* dyp = dy.data_ptr<float>();
  at::parallel_for(0, B * C, 4, [&](int64_t q0, int64_t q1) {
    map_grads(q0, q1, dp, yp, gp, mp, ip, op, xp, dgp, dbp, B, C, S, dyp);
  });
  return {dy, dgamma, dbeta};
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &bn_relu_pool_forward, "batch norm (training), ReLU and 2x2 max pooling, forward");
  m.def("backward", &bn_relu_pool_backward, "batch norm (training), ReLU and 2x2 max pooling, backward");
}
