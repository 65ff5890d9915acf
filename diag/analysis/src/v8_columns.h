// Small column tools the V8 graph analyses share: a node set as a bitmap
// (1/8 byte a node, where a bool column would cost 1) and a bucket index
// (CSR) built by counting sort without a second per-key array.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace leakscope::analysis::v8 {

class NodeBits {
 public:
  NodeBits() = default;
  explicit NodeBits(std::size_t n) : words_((n + 63) / 64, 0) {}
  bool test(std::uint32_t i) const { return ((words_[i >> 6] >> (i & 63)) & 1) != 0; }
  void set(std::uint32_t i) { words_[i >> 6] |= std::uint64_t{1} << (i & 63); }

 private:
  std::vector<std::uint64_t> words_;
};

// Items grouped by key: items of key k are [first[k], first[k + 1]) in the
// caller's arrays. `forEach(emit)` calls emit(key, a, b) once per item, the
// same way on both of its calls (count, then place); `reserve(total)` sizes
// the caller's arrays; `place(slot, a, b)` stores an item. Within a key,
// items keep forEach's order.
template <typename ForEach, typename Reserve, typename Place>
std::vector<std::uint32_t> bucketIndex(std::size_t keys, ForEach forEach, Reserve reserve,
                                       Place place) {
  std::vector<std::uint32_t> first(keys + 1, 0);
  forEach([&](std::uint32_t key, std::uint32_t, std::uint32_t) { ++first[key + 1]; });
  for (std::size_t i = 1; i <= keys; ++i) first[i] += first[i - 1];
  reserve(first[keys]);
  // first[key] serves as the cursor, then everything shifts back by one.
  forEach([&](std::uint32_t key, std::uint32_t a, std::uint32_t b) { place(first[key]++, a, b); });
  for (std::size_t i = keys; i > 0; --i) first[i] = first[i - 1];
  first[0] = 0;
  return first;
}

}  // namespace leakscope::analysis::v8
