#include "util/files.hpp"
#include "util/errors.hpp"

#include <openssl/evp.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <stdexcept>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

namespace shrink {

namespace fs = std::filesystem;

namespace {
/// The size of a regular file no larger than max_bytes; throws like read_file_bounded.
uint64_t checked_size(const fs::path& path, uint64_t max_bytes) {
    std::error_code ec;
    const auto status = fs::status(path, ec);
    if (ec || !fs::exists(status)) throw std::runtime_error(path.string() + ": error: no such file");
    if (!fs::is_regular_file(status)) throw std::runtime_error(path.string() + ": error: not a regular file");
    const uint64_t size = fs::file_size(path, ec);
    if (ec) throw std::runtime_error(path.string() + ": error: cannot read size: " + ec.message());
    if (size > max_bytes)
        throw std::runtime_error(path.string() + ": error: file is " + std::to_string(size) + " bytes, more than the " +
                                 std::to_string(max_bytes) + " allowed");
    return size;
}
}  // namespace

mapped_file::~mapped_file() {
    if (data && size) ::munmap(const_cast<char*>(data), size);
}

std::shared_ptr<const mapped_file> map_file(const fs::path& path, uint64_t max_bytes) {
    const uint64_t size = checked_size(path, max_bytes);
    auto out = std::make_shared<mapped_file>();
    if (size == 0) return out;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw std::runtime_error(path.string() + ": error: cannot open: " + std::strerror(errno));
    void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    const int err = errno;
    ::close(fd);  // the mapping keeps the file
    if (p == MAP_FAILED) throw std::runtime_error(path.string() + ": error: cannot map: " + std::strerror(err));
    out->data = static_cast<const char*>(p);
    out->size = size;
    return out;
}

void release_mapped_pages(const void* data, uint64_t size) {
    const uintptr_t page = uintptr_t(::sysconf(_SC_PAGESIZE));
    const uintptr_t begin = (uintptr_t(data) + page - 1) / page * page, end = (uintptr_t(data) + size) / page * page;
    if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

std::string read_file_bounded(const fs::path& path, uint64_t max_bytes) {
    const uint64_t size = checked_size(path, max_bytes);
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error(path.string() + ": error: cannot open: " + std::strerror(errno));
    std::string bytes(size, '\0');
    in.read(bytes.data(), static_cast<std::streamsize>(size));
    if (static_cast<uint64_t>(in.gcount()) != size) throw std::runtime_error(path.string() + ": error: short read");
    return bytes;
}

std::shared_ptr<const mapped_file> map_input_file(const fs::path& path, uint64_t max_bytes) {
    try {
        return map_file(path, max_bytes);
    } catch (const std::runtime_error& e) {
        throw input_error(e.what());
    }
}

std::string read_input_file(const fs::path& path, uint64_t max_bytes) {
    try {
        return read_file_bounded(path, max_bytes);
    } catch (const std::runtime_error& e) {
        throw input_error(e.what());
    }
}

void write_file_atomic(const fs::path& path, std::string_view bytes) {
    write_file_atomic_streamed(path, [&](const byte_sink& sink) { sink(bytes.data(), bytes.size()); });
}

void write_file_atomic_streamed(const fs::path& path, const std::function<void(const byte_sink&)>& produce) {
    const fs::path temp = path.string() + ".tmp-" + std::to_string(::getpid());
    const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) throw std::runtime_error(path.string() + ": error: cannot write: " + std::strerror(errno));
    const byte_sink sink = [&](const void* data, size_t size) {
        const char* bytes = static_cast<const char*>(data);
        size_t done = 0;
        while (done < size) {
            const ssize_t n = ::write(fd, bytes + done, size - done);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) throw std::runtime_error(path.string() + ": error: cannot write: " + std::strerror(errno));
            done += static_cast<size_t>(n);
        }
    };
    try {
        produce(sink);
    } catch (...) {
        ::close(fd);
        ::unlink(temp.c_str());
        throw;
    }
    if (::fsync(fd) != 0 || ::close(fd) != 0) {
        const int err = errno;
        ::unlink(temp.c_str());
        throw std::runtime_error(path.string() + ": error: cannot flush: " + std::strerror(err));
    }
    if (std::rename(temp.c_str(), path.c_str()) != 0) {
        const int err = errno;
        ::unlink(temp.c_str());
        throw std::runtime_error(path.string() + ": error: cannot rename into place: " + std::strerror(err));
    }
}

fs::path cache_path(const char* override_env, const std::string& name) {
    if (const char* env = std::getenv(override_env)) return std::string(env) == "off" ? fs::path() : fs::path(env);
    if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) return fs::path(xdg) / "shrink" / name;
    if (const char* home = std::getenv("HOME"); home && *home) return fs::path(home) / ".cache" / "shrink" / name;
    return {};
}

namespace {
struct digest {
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx{EVP_MD_CTX_new(), &EVP_MD_CTX_free};
    digest() {
        if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) throw std::runtime_error("sha256 unavailable");
    }
    void update(const void* data, size_t n) { EVP_DigestUpdate(ctx.get(), data, n); }
    std::string hex() {
        unsigned char out[EVP_MAX_MD_SIZE];
        unsigned int n = 0;
        EVP_DigestFinal_ex(ctx.get(), out, &n);
        static const char* digits = "0123456789abcdef";
        std::string s;
        for (unsigned int i = 0; i < n; ++i) {
            s += digits[out[i] >> 4];
            s += digits[out[i] & 15];
        }
        return s;
    }
};
}  // namespace

sha256_stream::sha256_stream() : ctx_(new digest) {}
sha256_stream::~sha256_stream() { delete static_cast<digest*>(ctx_); }
void sha256_stream::update(const void* data, size_t size) { static_cast<digest*>(ctx_)->update(data, size); }
std::string sha256_stream::hex() { return static_cast<digest*>(ctx_)->hex(); }

std::string sha256_hex(std::string_view bytes) {
    digest d;
    d.update(bytes.data(), bytes.size());
    return d.hex();
}

std::string sha256_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error(path.string() + ": error: cannot open for hashing");
    digest d;
    std::vector<char> buffer(1 << 16);
    while (in) {
        in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
        d.update(buffer.data(), static_cast<size_t>(in.gcount()));
    }
    return d.hex();
}

}  // namespace shrink
