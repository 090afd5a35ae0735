// Which keys a query tile sees, and the -inf masking of scores outside that set: the tail of
// the key sequence and, when causal, keys after the query (bottom-right aligned: query i sees
// key j iff j <= i + seqlen_k - seqlen_q). Only tiles that straddle a boundary are masked.
// FwdMask walks the key tiles of a query tile; BwdMask the query tiles of a key tile.
#pragma once

#include <cute/tensor.hpp>

namespace fa3 {

// Key tiles [begin, end) of a query tile, visited from end - 1 down to begin.
struct KeyRange {
  int begin;
  int end;
};

template <int kBlockM, int kBlockN, bool kCausal>
struct FwdMask {
  int seqlen_q;
  int seqlen_k;

  // Key tiles [0, n_block_max) hold every key some row of query tile m_block sees.
  CUTLASS_DEVICE int n_block_max(int m_block) const {
    int n_max = (seqlen_k + kBlockN - 1) / kBlockN;
    if constexpr (kCausal) {
      int last_row = min((m_block + 1) * kBlockM, seqlen_q) - 1;
      int last_key = last_row + seqlen_k - seqlen_q;  // the last key that row sees
      n_max = min(n_max, last_key < 0 ? 0 : last_key / kBlockN + 1);
    }
    return n_max;
  }

  // Key tiles n >= n_block_min_masked(m_block) hold a key that some row of query tile m_block
  // must not see (past seqlen_k, or after the diagonal when causal); tiles below it need no mask.
  CUTLASS_DEVICE int n_block_min_masked(int m_block) const {
    int n_min = seqlen_k / kBlockN;  // the first tile reaching past the last key
    if constexpr (kCausal) {
      int first_row_last_key = m_block * kBlockM + seqlen_k - seqlen_q;  // the tile's first row sees up to here
      n_min = min(n_min, first_row_last_key < 0 ? 0 : (first_row_last_key + 1) / kBlockN);
    }
    return n_min;
  }

  // scores and coords are (rows, cols) views of the same accumulator: the score and its
  // (row, col) inside the tile.
  template <class Scores, class Coords>
  CUTLASS_DEVICE void apply(Scores& scores, Coords const& coords, int m_block, int n_block) const {
    CUTLASS_PRAGMA_UNROLL
    for (int i = 0; i < cute::size(scores); ++i) {
      int row = m_block * kBlockM + int(cute::get<0>(coords(i)));
      int col = n_block * kBlockN + int(cute::get<1>(coords(i)));
      bool hidden = col >= seqlen_k;
      if constexpr (kCausal) hidden = hidden || col > row + seqlen_k - seqlen_q;
      if (hidden) scores(i) = -INFINITY;
    }
  }
};

// Backward: the query tiles of key tile n_block, and the masking of its transposed scores S^T
// (rows are keys). Query rows past seqlen_q need no mask (their LSE is +inf: P = 0).
template <int kBlockM, int kBlockN, bool kCausal>
struct BwdMask {
  int seqlen_q;
  int seqlen_k;

  // Query tiles [m_block_begin, m_blocks) hold every query that sees a key of n_block.
  CUTLASS_DEVICE int m_block_begin(int n_block) const {
    if constexpr (!kCausal) return 0;
    int first_query = n_block * kBlockN - (seqlen_k - seqlen_q);  // the first query that sees the tile's first key
    return first_query <= 0 ? 0 : first_query / kBlockM;
  }

  // Query tiles m >= m_block_unmasked(n_block, begin, end) see every key of the tile; the key
  // tail (a tile reaching past seqlen_k) is masked in all of them.
  CUTLASS_DEVICE int m_block_unmasked(int n_block, int begin, int end) const {
    if ((n_block + 1) * kBlockN > seqlen_k) return end;
    if constexpr (!kCausal) return begin;
    // The tile's first query must see its last key: m * kBlockM + seqlen_k - seqlen_q >= (n + 1) * kBlockN - 1.
    int need = (n_block + 1) * kBlockN - 1 - (seqlen_k - seqlen_q);
    int m = need <= 0 ? 0 : (need + kBlockM - 1) / kBlockM;
    return max(begin, min(m, end));
  }

  // Whether (key, query) of the tile pair is hidden; coordinates inside the tiles.
  CUTLASS_DEVICE bool hidden(int n_block, int m_block, int key, int query) const {
    int col = n_block * kBlockN + key;
    bool out = col >= seqlen_k;
    if constexpr (kCausal) out = out || col > m_block * kBlockM + query + seqlen_k - seqlen_q;
    return out;
  }
};

}  // namespace fa3
