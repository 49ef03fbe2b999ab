#pragma once
// CRC-32C (Castagnoli; reflected polynomial 0x82F63B78), as TFRecord framing needs it, and the
// masked form TFRecord stores (tensorflow/core/lib/hash/crc32c.h: Mask).
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace lmsweep::tensorboard {

// CRC-32C of `size` bytes, continuing from `crc` (0 to start): crc32c("123456789") = 0xE3069283.
std::uint32_t crc32c(const void* data, std::size_t size, std::uint32_t crc = 0);
inline std::uint32_t crc32c(std::string_view bytes) { return crc32c(bytes.data(), bytes.size()); }

// ((crc >> 15) | (crc << 17)) + 0xa282ead8: TFRecord stores CRCs masked, so that a CRC of
// data that itself holds CRCs does not look like one.
std::uint32_t mask_crc(std::uint32_t crc);
inline std::uint32_t masked_crc32c(std::string_view bytes) { return mask_crc(crc32c(bytes)); }

}  // namespace lmsweep::tensorboard
