/* qstate_kernels.h: the one body of every state-vector kernel, expanded per instruction set (zstd's habit).
 * Not a normal header: a file includes it once after defining
 *   AE_QK_SUFFIX      the name suffix (scalar, avx2, avx512) and the table _ae_qk_<suffix>
 *   AE_QK_TARGET      the function attribute (empty, or __attribute__((target("..."))))
 *   AE_W, AE_LOG2W    floats per vector (1, 8, 16) and its log2; AE_DW doubles per vector (1, 4, 8)
 *   vf, vd, vi, vm    float vector, double vector, lane-index vector, lane mask
 *   VF_LOAD/STORE/STOREU/SET1/MUL/ADD/FMADD/FNMADD   float ops (FMADD(a,b,c) = a*b + c, FNMADD = c - a*b)
 *   VD_ZERO/LOADF/FMADD/FNMADD/ADD/STORE             double ops; LOADF widens AE_DW floats to doubles
 *   VI_LOAD(p), VF_PERM(x, idx)                       lane permutation: result[k] = x[idx[k]]
 *   VM_LOAD(p), VF_BLEND(m, a, b)                     m from int32 lanes (-1 or 0); result = m ? b : a
 * (the last two groups only when AE_W > 1).
 *
 * How the kernels work. Reductions (norm2, inner) widen float32 to float64 before multiplying, so every
 * product is exact and only the float64 additions round; four independent accumulators hide the FMA latency.
 * A 1-qubit gate on qubit t pairs amplitude i with i ^ 2^t. When 2^t is at least the vector width, the pairs
 * are whole vectors 2^t apart and the 2x2 complex matrix is applied to two loaded vectors at once. When 2^t is
 * smaller, both members of a pair lie in the same vector: with p = x permuted so lane k holds lane k ^ 2^t,
 * every lane computes y = D*x + O*p, where D and O hold m00 and m01 on lanes whose bit t is 0 and m11 and m10
 * on the others. CNOT is the same idea with a swap instead of a matrix: whole vectors swapped under a lane
 * mask (control bit inside the vector) or a permutation (target bit inside the vector), over the index
 * ranges selected by the bits outside the vector. The scalar expansion (AE_W = 1) keeps only the
 * whole-vector paths, which become the plain textbook loops. */

#define AE_QK_CAT2(a, b) a##_##b
#define AE_QK_CAT(a, b) AE_QK_CAT2(a, b)
#define AE_QK(f) AE_QK_CAT(f, AE_QK_SUFFIX)

/* Insert a 0 bit at position b of k (k's bits at and above b move up one). */
static inline size_t AE_QK(insert0)(size_t k, unsigned b) {
  const size_t low = ((size_t)1 << b) - 1;
  return ((k & ~low) << 1) | (k & low);
}

static AE_QK_TARGET double AE_QK(hsum_d)(vd v) {
  _Alignas(64) double t[AE_DW];
  VD_STORE(t, v);
  double s = 0;
  for (int k = 0; k < AE_DW; k++) s += t[k];
  return s;
}

static AE_QK_TARGET double AE_QK(norm2)(const float *restrict re, const float *restrict im, size_t n) {
  vd a0 = VD_ZERO(), a1 = VD_ZERO(), a2 = VD_ZERO(), a3 = VD_ZERO();
  size_t i = 0;
  for (; i + 2 * AE_DW <= n; i += 2 * AE_DW) {
    const vd r0 = VD_LOADF(re + i), r1 = VD_LOADF(re + i + AE_DW);
    const vd m0 = VD_LOADF(im + i), m1 = VD_LOADF(im + i + AE_DW);
    a0 = VD_FMADD(r0, r0, a0);
    a1 = VD_FMADD(m0, m0, a1);
    a2 = VD_FMADD(r1, r1, a2);
    a3 = VD_FMADD(m1, m1, a3);
  }
  for (; i < n; i += AE_DW) {
    const vd r0 = VD_LOADF(re + i), m0 = VD_LOADF(im + i);
    a0 = VD_FMADD(r0, r0, a0);
    a1 = VD_FMADD(m0, m0, a1);
  }
  return AE_QK(hsum_d)(VD_ADD(VD_ADD(a0, a1), VD_ADD(a2, a3)));
}

/* <a|b> = sum conj(a) b = sum (ar br + ai bi) + i (ar bi - ai br). */
static AE_QK_TARGET void AE_QK(inner)(const float *restrict ar, const float *restrict ai, const float *restrict br,
                                      const float *restrict bi, size_t n, double out[2]) {
  vd r0 = VD_ZERO(), r1 = VD_ZERO(), i0 = VD_ZERO(), i1 = VD_ZERO();
  for (size_t k = 0; k < n; k += AE_DW) {
    const vd xr = VD_LOADF(ar + k), xi = VD_LOADF(ai + k), yr = VD_LOADF(br + k), yi = VD_LOADF(bi + k);
    r0 = VD_FMADD(xr, yr, r0);
    r1 = VD_FMADD(xi, yi, r1);
    i0 = VD_FMADD(xr, yi, i0);
    i1 = VD_FNMADD(xi, yr, i1);
  }
  out[0] = AE_QK(hsum_d)(VD_ADD(r0, r1));
  out[1] = AE_QK(hsum_d)(VD_ADD(i0, i1));
}

static AE_QK_TARGET void AE_QK(scale)(float *restrict re, float *restrict im, size_t n, float cr, float ci) {
  const vf kr = VF_SET1(cr), ki = VF_SET1(ci);
  for (size_t k = 0; k < n; k += AE_W) {
    const vf xr = VF_LOAD(re + k), xi = VF_LOAD(im + k);
    VF_STORE(re + k, VF_FNMADD(ki, xi, VF_MUL(kr, xr)));
    VF_STORE(im + k, VF_FMADD(ki, xr, VF_MUL(kr, xi)));
  }
}

static AE_QK_TARGET void AE_QK(scale_real)(float *restrict re, float *restrict im, size_t n, float k0) {
  const vf k = VF_SET1(k0);
  for (size_t i = 0; i < n; i += AE_W) {
    VF_STORE(re + i, VF_MUL(k, VF_LOAD(re + i)));
    VF_STORE(im + i, VF_MUL(k, VF_LOAD(im + i)));
  }
}

/* y = (cr + i ci)(xr + i xi) + (or + i oi)(pr + i pi), the real part then the imaginary part. */
#define AE_QK_CMAC_RE(cr, ci, xr, xi, or_, oi, pr, pi) \
  VF_FNMADD(oi, pi, VF_FMADD(or_, pr, VF_FNMADD(ci, xi, VF_MUL(cr, xr))))
#define AE_QK_CMAC_IM(cr, ci, xr, xi, or_, oi, pr, pi) \
  VF_FMADD(oi, pr, VF_FMADD(or_, pi, VF_FMADD(ci, xr, VF_MUL(cr, xi))))

static AE_QK_TARGET void AE_QK(gate)(float *restrict re, float *restrict im, size_t n, unsigned t, const float m[8]) {
  const size_t s = (size_t)1 << t;
#if AE_W > 1
  if (t < AE_LOG2W) {
    _Alignas(64) float dr[AE_W], di[AE_W], or_[AE_W], oi[AE_W];
    _Alignas(64) int32_t idx[AE_W];
    for (int k = 0; k < AE_W; k++) {
      const int hi = (k >> t) & 1; /* lane holds a1 (bit t set) or a0 */
      dr[k] = hi ? m[6] : m[0];
      di[k] = hi ? m[7] : m[1];
      or_[k] = hi ? m[4] : m[2];
      oi[k] = hi ? m[5] : m[3];
      idx[k] = k ^ (int32_t)s;
    }
    const vf Dr = VF_LOAD(dr), Di = VF_LOAD(di), Or = VF_LOAD(or_), Oi = VF_LOAD(oi);
    const vi I = VI_LOAD(idx);
    for (size_t k = 0; k < n; k += AE_W) {
      const vf xr = VF_LOAD(re + k), xi = VF_LOAD(im + k);
      const vf pr = VF_PERM(xr, I), pi = VF_PERM(xi, I);
      VF_STORE(re + k, AE_QK_CMAC_RE(Dr, Di, xr, xi, Or, Oi, pr, pi));
      VF_STORE(im + k, AE_QK_CMAC_IM(Dr, Di, xr, xi, Or, Oi, pr, pi));
    }
    return;
  }
#endif
  const vf m00r = VF_SET1(m[0]), m00i = VF_SET1(m[1]), m01r = VF_SET1(m[2]), m01i = VF_SET1(m[3]);
  const vf m10r = VF_SET1(m[4]), m10i = VF_SET1(m[5]), m11r = VF_SET1(m[6]), m11i = VF_SET1(m[7]);
  for (size_t base = 0; base < n; base += 2 * s) {
    for (size_t k = base; k < base + s; k += AE_W) {
      const vf a0r = VF_LOAD(re + k), a0i = VF_LOAD(im + k);
      const vf a1r = VF_LOAD(re + k + s), a1i = VF_LOAD(im + k + s);
      VF_STORE(re + k, AE_QK_CMAC_RE(m00r, m00i, a0r, a0i, m01r, m01i, a1r, a1i));
      VF_STORE(im + k, AE_QK_CMAC_IM(m00r, m00i, a0r, a0i, m01r, m01i, a1r, a1i));
      VF_STORE(re + k + s, AE_QK_CMAC_RE(m11r, m11i, a1r, a1i, m10r, m10i, a0r, a0i));
      VF_STORE(im + k + s, AE_QK_CMAC_IM(m11r, m11i, a1r, a1i, m10r, m10i, a0r, a0i));
    }
  }
}

static AE_QK_TARGET void AE_QK(cnot)(float *restrict re, float *restrict im, size_t n, unsigned c, unsigned t) {
  const size_t cb = (size_t)1 << c, tb = (size_t)1 << t;
#if AE_W > 1
  if (c < AE_LOG2W || t < AE_LOG2W) {
    _Alignas(64) int32_t idx[AE_W], mask[AE_W];
    for (int k = 0; k < AE_W; k++) {
      idx[k] = k ^ (int32_t)tb;
      mask[k] = ((size_t)k & cb) ? -1 : 0;
    }
    const vi I = VI_LOAD(idx);
    const vm M = VM_LOAD(mask);
    if (c < AE_LOG2W && t < AE_LOG2W) { /* both bits inside the vector: permute the lanes whose control is set */
      for (size_t k = 0; k < n; k += AE_W) {
        const vf xr = VF_LOAD(re + k), xi = VF_LOAD(im + k);
        VF_STORE(re + k, VF_BLEND(M, xr, VF_PERM(xr, I)));
        VF_STORE(im + k, VF_BLEND(M, xi, VF_PERM(xi, I)));
      }
    } else if (c < AE_LOG2W) { /* target outside: vectors tb apart, swapped on the lanes whose control is set */
      for (size_t k = 0; k < n / 2; k += AE_W) {
        const size_t i0 = AE_QK(insert0)(k, t), i1 = i0 + tb;
        const vf r0 = VF_LOAD(re + i0), r1 = VF_LOAD(re + i1), m0 = VF_LOAD(im + i0), m1 = VF_LOAD(im + i1);
        VF_STORE(re + i0, VF_BLEND(M, r0, r1));
        VF_STORE(re + i1, VF_BLEND(M, r1, r0));
        VF_STORE(im + i0, VF_BLEND(M, m0, m1));
        VF_STORE(im + i1, VF_BLEND(M, m1, m0));
      }
    } else { /* control outside, target inside: permute every vector whose control bit is set */
      for (size_t k = 0; k < n / 2; k += AE_W) {
        const size_t i = AE_QK(insert0)(k, c) | cb;
        VF_STORE(re + i, VF_PERM(VF_LOAD(re + i), I));
        VF_STORE(im + i, VF_PERM(VF_LOAD(im + i), I));
      }
    }
    return;
  }
#endif
  /* Both bits outside the vector: enumerate the quarter of the indices with control 1 and target 0. */
  const unsigned lo = c < t ? c : t, hi = c < t ? t : c;
  for (size_t k = 0; k < n / 4; k += AE_W) {
    const size_t i0 = AE_QK(insert0)(AE_QK(insert0)(k, lo), hi) | cb, i1 = i0 | tb;
    const vf r0 = VF_LOAD(re + i0), r1 = VF_LOAD(re + i1), m0 = VF_LOAD(im + i0), m1 = VF_LOAD(im + i1);
    VF_STORE(re + i0, r1);
    VF_STORE(re + i1, r0);
    VF_STORE(im + i0, m1);
    VF_STORE(im + i1, m0);
  }
}

static AE_QK_TARGET void AE_QK(probs)(const float *restrict re, const float *restrict im, float *restrict out, size_t n) {
  for (size_t k = 0; k < n; k += AE_W) {
    const vf xr = VF_LOAD(re + k), xi = VF_LOAD(im + k);
    VF_STOREU(out + k, VF_FMADD(xi, xi, VF_MUL(xr, xr)));
  }
}

/* ---- streaming passes for the bandwidth baseline: the loads and stores the kernels use, over a pair of arrays
 * walked side by side as re and im are, with no arithmetic worth the name, so their rate is what memory (or the
 * cache) gives one core for that access pattern. */
static AE_QK_TARGET double AE_QK(stream_read)(const float *restrict a, const float *restrict b, size_t n) {
  vf a0 = VF_SET1(0), a1 = VF_SET1(0), a2 = VF_SET1(0), a3 = VF_SET1(0);
  for (size_t i = 0; i < n; i += 2 * AE_W) {
    a0 = VF_ADD(a0, VF_LOAD(a + i));
    a1 = VF_ADD(a1, VF_LOAD(b + i));
    a2 = VF_ADD(a2, VF_LOAD(a + i + AE_W));
    a3 = VF_ADD(a3, VF_LOAD(b + i + AE_W));
  }
  _Alignas(64) float t[AE_W];
  VF_STORE(t, VF_ADD(VF_ADD(a0, a1), VF_ADD(a2, a3)));
  double s = 0;
  for (int k = 0; k < AE_W; k++) s += t[k];
  return s;
}

static AE_QK_TARGET void AE_QK(stream_copy)(float *restrict da, float *restrict db, const float *restrict a,
                                            const float *restrict b, size_t n) {
  for (size_t i = 0; i < n; i += AE_W) {
    VF_STORE(da + i, VF_LOAD(a + i));
    VF_STORE(db + i, VF_LOAD(b + i));
  }
}

static AE_QK_TARGET void AE_QK(stream_update)(float *restrict a, float *restrict b, size_t n, float k0) {
  const vf k = VF_SET1(k0);
  for (size_t i = 0; i < n; i += AE_W) {
    VF_STORE(a + i, VF_MUL(k, VF_LOAD(a + i)));
    VF_STORE(b + i, VF_MUL(k, VF_LOAD(b + i)));
  }
}

const ae_qkernels AE_QK_CAT(_ae_qk, AE_QK_SUFFIX) = {
    .name = AE_QK_NAME,
    .width = AE_W,
    .norm2 = AE_QK(norm2),
    .inner = AE_QK(inner),
    .scale = AE_QK(scale),
    .scale_real = AE_QK(scale_real),
    .gate = AE_QK(gate),
    .cnot = AE_QK(cnot),
    .probs = AE_QK(probs),
    .stream_read = AE_QK(stream_read),
    .stream_copy = AE_QK(stream_copy),
    .stream_update = AE_QK(stream_update),
};
