// pybind11 glue: a thin layer over the C API (<w4a16/w4a16.h>). It reads raw pointers, releases the GIL
// around anything that can block, and reports failures as (status, message) so that the Python side
// (python/w4a16_gemm/) owns the exception types and the argument checks.
#include <cuda_runtime_api.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "w4a16/w4a16.h"

namespace py = pybind11;

// Test hook from csrc/prepack.cu (not part of the public header).
extern "C" w4a16_status_t w4a16_internal_check_layout(int64_t n_padded, int64_t k);

namespace {

// ---- DLPack (ABI of dlpack.h v0.8; the struct layout is the stable interchange format) ----
struct DLDevice {
  int32_t device_type;  // 1 = CPU, 2 = CUDA, 3 = CUDA host, 13 = CUDA managed
  int32_t device_id;
};
struct DLDataType {
  uint8_t code;  // 0 int, 1 uint, 2 float, 4 bfloat
  uint8_t bits;
  uint16_t lanes;
};
struct DLTensor {
  void* data;
  DLDevice device;
  int32_t ndim;
  DLDataType dtype;
  int64_t* shape;
  int64_t* strides;  // in elements; NULL means compact row-major
  uint64_t byte_offset;
};
struct DLManagedTensor {
  DLTensor dl_tensor;
  void* manager_ctx;
  void (*deleter)(DLManagedTensor* self);
};

// Reads a "dltensor" capsule without consuming it: the caller keeps the capsule (and so the producer's
// memory) alive for the duration of the call.
py::dict dlpack_info(py::capsule capsule) {
  if (std::strcmp(capsule.name(), "dltensor") != 0)
    throw py::value_error(std::string("expected a 'dltensor' DLPack capsule, got '") + capsule.name() + "'");
  auto* managed = static_cast<DLManagedTensor*>(capsule.get_pointer());
  const DLTensor& t = managed->dl_tensor;
  std::vector<int64_t> shape(t.shape, t.shape + t.ndim), strides;
  if (t.strides) {
    strides.assign(t.strides, t.strides + t.ndim);
  } else {
    strides.resize(t.ndim);
    int64_t s = 1;
    for (int i = t.ndim - 1; i >= 0; --i) {
      strides[i] = s;
      s *= shape[i];
    }
  }
  py::dict d;
  d["ptr"] = reinterpret_cast<uintptr_t>(static_cast<char*>(t.data) + t.byte_offset);
  d["shape"] = py::tuple(py::cast(shape));
  d["strides"] = py::tuple(py::cast(strides));  // elements
  d["dtype"] = py::make_tuple(int(t.dtype.code), int(t.dtype.bits), int(t.dtype.lanes));
  d["device"] = py::make_tuple(int(t.device.device_type), int(t.device.device_id));
  return d;
}

// A DLPack capsule over memory owned by `owner` (kept alive until the consumer calls the deleter).
struct ExportContext {
  PyObject* owner;
  std::vector<int64_t> shape;
  std::vector<int64_t> strides;
};

void delete_managed(DLManagedTensor* self) {
  auto* ctx = static_cast<ExportContext*>(self->manager_ctx);
  {
    py::gil_scoped_acquire gil;
    Py_XDECREF(ctx->owner);
  }
  delete ctx;
  delete self;
}

void capsule_destructor(PyObject* capsule) {
  // Only an unconsumed capsule still owns the tensor; a consumer renames it to "used_dltensor".
  if (PyCapsule_IsValid(capsule, "dltensor")) {
    auto* managed = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(capsule, "dltensor"));
    if (managed && managed->deleter) managed->deleter(managed);
  }
}

py::object make_dlpack(py::object owner, uintptr_t ptr, std::vector<int64_t> shape, std::vector<int64_t> strides,
                       int dtype_code, int bits, int device_id) {
  auto* ctx = new ExportContext{owner.ptr(), std::move(shape), std::move(strides)};
  Py_INCREF(ctx->owner);
  auto* managed = new DLManagedTensor{};
  managed->dl_tensor.data = reinterpret_cast<void*>(ptr);
  managed->dl_tensor.device = DLDevice{2, device_id};
  managed->dl_tensor.ndim = static_cast<int32_t>(ctx->shape.size());
  managed->dl_tensor.dtype = DLDataType{static_cast<uint8_t>(dtype_code), static_cast<uint8_t>(bits), 1};
  managed->dl_tensor.shape = ctx->shape.data();
  managed->dl_tensor.strides = ctx->strides.data();
  managed->dl_tensor.byte_offset = 0;
  managed->manager_ctx = ctx;
  managed->deleter = delete_managed;
  PyObject* capsule = PyCapsule_New(managed, "dltensor", capsule_destructor);
  if (!capsule) {
    delete_managed(managed);
    throw py::error_already_set();
  }
  return py::reinterpret_steal<py::object>(capsule);
}

// ---- device memory ----
std::string cuda_message(cudaError_t err) { return std::string(cudaGetErrorName(err)) + ": " + cudaGetErrorString(err); }

class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    if (cudaGetDevice(&previous_) != cudaSuccess) previous_ = -1;
    if (device >= 0 && device != previous_) {
      cudaError_t err = cudaSetDevice(device);
      if (err != cudaSuccess) throw std::runtime_error("cudaSetDevice(" + std::to_string(device) + "): " + cuda_message(err));
      restore_ = true;
    }
  }
  ~DeviceGuard() {
    if (restore_ && previous_ >= 0) cudaSetDevice(previous_);
  }

 private:
  int previous_ = -1;
  bool restore_ = false;
};

// Plain cudaMalloc'd memory. Errors raise RuntimeError with the CUDA error name (the Python layer maps
// cudaErrorMemoryAllocation to its own out-of-memory exception).
class DeviceBuffer {
 public:
  DeviceBuffer(size_t nbytes, int device) : nbytes_(nbytes), device_(device) {
    DeviceGuard guard(device);
    if (device_ < 0) cudaGetDevice(&device_);
    if (nbytes_) {
      cudaError_t err;
      {
        py::gil_scoped_release nogil;
        err = cudaMalloc(&ptr_, nbytes_);
      }
      if (err != cudaSuccess) {
        cudaGetLastError();
        ptr_ = nullptr;
        throw std::runtime_error("cudaMalloc(" + std::to_string(nbytes_) + " bytes) failed: " + cuda_message(err));
      }
    }
  }
  ~DeviceBuffer() {
    if (ptr_) {
      DeviceGuard guard(device_);
      cudaFree(ptr_);
    }
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  uintptr_t ptr() const { return reinterpret_cast<uintptr_t>(ptr_); }
  size_t nbytes() const { return nbytes_; }
  int device() const { return device_; }

  void upload(py::buffer src, size_t offset, uintptr_t stream, bool synchronize) {
    py::buffer_info info = src.request();
    const size_t bytes = static_cast<size_t>(info.size) * info.itemsize;
    if (offset + bytes > nbytes_) throw py::value_error("upload past the end of the device buffer");
    DeviceGuard guard(device_);
    cudaError_t err;
    {
      py::gil_scoped_release nogil;
      err = cudaMemcpyAsync(static_cast<char*>(ptr_) + offset, info.ptr, bytes, cudaMemcpyHostToDevice,
                            reinterpret_cast<cudaStream_t>(stream));
      if (err == cudaSuccess && synchronize) err = cudaStreamSynchronize(reinterpret_cast<cudaStream_t>(stream));
    }
    if (err != cudaSuccess) throw std::runtime_error("host-to-device copy failed: " + cuda_message(err));
  }

  void download(py::buffer dst, size_t offset, uintptr_t stream) const {
    py::buffer_info info = dst.request(true);
    const size_t bytes = static_cast<size_t>(info.size) * info.itemsize;
    if (offset + bytes > nbytes_) throw py::value_error("download past the end of the device buffer");
    DeviceGuard guard(device_);
    cudaError_t err;
    {
      py::gil_scoped_release nogil;
      err = cudaMemcpyAsync(info.ptr, static_cast<const char*>(ptr_) + offset, bytes, cudaMemcpyDeviceToHost,
                            reinterpret_cast<cudaStream_t>(stream));
      if (err == cudaSuccess) err = cudaStreamSynchronize(reinterpret_cast<cudaStream_t>(stream));
    }
    if (err != cudaSuccess) throw std::runtime_error("device-to-host copy failed: " + cuda_message(err));
  }

 private:
  void* ptr_ = nullptr;
  size_t nbytes_ = 0;
  int device_ = -1;
};

// ---- the GEMM ----
w4a16_gemm_args_t make_args(int64_t m, int64_t n, int64_t k, int64_t group_size, uintptr_t x, int64_t ldx,
                            uintptr_t w, uintptr_t scales, uintptr_t zeros, uintptr_t bias, float alpha,
                            uintptr_t out, int64_t ldo) {
  w4a16_gemm_args_t a{};
  a.m = m;
  a.n = n;
  a.k = k;
  a.group_size = group_size;
  a.x = reinterpret_cast<const void*>(x);
  a.ldx = ldx;
  a.packed_weight = reinterpret_cast<const void*>(w);
  a.scales = reinterpret_cast<const void*>(scales);
  a.zeros = reinterpret_cast<const void*>(zeros);
  a.bias = reinterpret_cast<const void*>(bias);
  a.alpha = alpha;
  a.out = reinterpret_cast<void*>(out);
  a.ldo = ldo;
  return a;
}

py::tuple status_tuple(w4a16_status_t st) {
  return py::make_tuple(static_cast<int>(st), st == W4A16_OK ? std::string() : std::string(w4a16_last_error_message()));
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "w4a16-gemm native core (pybind11 over the C API in <w4a16/w4a16.h>)";
  m.attr("__version__") = W4A16_VERSION_STRING;
  m.attr("CONFIG_AUTO") = W4A16_CONFIG_AUTO;

  py::enum_<w4a16_status_t>(m, "Status")
      .value("OK", W4A16_OK)
      .value("INVALID_SHAPE", W4A16_INVALID_SHAPE)
      .value("MISALIGNED", W4A16_MISALIGNED)
      .value("UNSUPPORTED_GROUP", W4A16_UNSUPPORTED_GROUP)
      .value("NO_KERNEL_IN_BUILD", W4A16_NO_KERNEL_IN_BUILD)
      .value("CANNOT_IMPLEMENT", W4A16_CANNOT_IMPLEMENT)
      .value("INSUFFICIENT_WORKSPACE", W4A16_INSUFFICIENT_WORKSPACE)
      .value("NO_SM90_DEVICE", W4A16_NO_SM90_DEVICE)
      .value("CUDA_ERROR", W4A16_CUDA_ERROR)
      .value("INVALID_VALUE", W4A16_INVALID_VALUE);

  m.def("library_version", [] { return std::string(w4a16_version()); });

  m.def("list_configs", [] {
    py::list out;
    for (int i = 0; i < w4a16_num_configs(); ++i) {
      w4a16_config_info_t info;
      if (w4a16_get_config_info(i, &info) != W4A16_OK) continue;
      py::dict d;
      d["index"] = i;
      d["name"] = std::string(info.name);
      d["tile_n"] = info.tile_n;
      d["tile_m"] = info.tile_m;
      d["tile_k"] = info.tile_k;
      d["cluster_n"] = info.cluster_n;
      d["cluster_m"] = info.cluster_m;
      d["schedule"] = info.schedule == W4A16_SCHEDULE_DECODE     ? "decode"
                      : info.schedule == W4A16_SCHEDULE_PINGPONG ? "pingpong"
                                                                 : "coop";
      d["zeros"] = static_cast<bool>(info.zeros);
      d["stream_k"] = static_cast<bool>(info.stream_k);
      out.append(d);
    }
    return out;
  });

  m.def("find_config", [](const std::string& name) { return w4a16_find_config(name.c_str()); });

  m.def("packed_weight_bytes", &w4a16_packed_weight_bytes, py::arg("k"), py::arg("n"));

  m.def("pack_weight", [](py::array_t<int8_t, py::array::c_style | py::array::forcecast> q) {
    if (q.ndim() != 2) throw py::value_error("q must be 2-D [K, N]");
    const int64_t k = q.shape(0), n = q.shape(1);
    py::array_t<uint8_t> packed(static_cast<py::ssize_t>(w4a16_packed_weight_bytes(k, n)));
    w4a16_status_t st;
    {
      py::gil_scoped_release nogil;
      st = w4a16_pack_weight(q.data(), k, n, packed.mutable_data());
    }
    if (st != W4A16_OK) throw py::value_error(w4a16_last_error_message());
    return packed;
  });

  m.def("unpack_weight", [](py::array_t<uint8_t, py::array::c_style | py::array::forcecast> packed, int64_t k, int64_t n) {
    if (static_cast<size_t>(packed.size()) != w4a16_packed_weight_bytes(k, n))
      throw py::value_error("packed buffer has the wrong size for (k, n)");
    py::array_t<int8_t> q({k, n});
    w4a16_status_t st;
    {
      py::gil_scoped_release nogil;
      st = w4a16_unpack_weight(packed.data(), k, n, q.mutable_data());
    }
    if (st != W4A16_OK) throw py::value_error(w4a16_last_error_message());
    return q;
  });

  m.def("check_layout", [](int64_t n_padded, int64_t k) {
    return status_tuple(w4a16_internal_check_layout(n_padded, k));
  });

  m.def("device_count", []() -> py::tuple {
    int count = 0;
    cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess) {
      cudaGetLastError();
      return py::make_tuple(0, cuda_message(err));
    }
    return py::make_tuple(count, std::string());
  });

  m.def("current_device", [] {
    int device = 0;
    cudaError_t err = cudaGetDevice(&device);
    if (err != cudaSuccess) {
      cudaGetLastError();
      return -1;
    }
    return device;
  });

  m.def("check_device", [](int device) {
    char name[256] = {};
    int sm_count = 0;
    w4a16_status_t st = w4a16_check_device(device, name, sizeof(name), &sm_count);
    int major = 0, minor = 0;
    if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess ||
        cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device) != cudaSuccess)
      cudaGetLastError();
    int driver = 0, runtime = 0;
    cudaDriverGetVersion(&driver);
    cudaRuntimeGetVersion(&runtime);
    py::dict d;
    d["status"] = static_cast<int>(st);
    d["message"] = st == W4A16_OK ? std::string() : std::string(w4a16_last_error_message());
    d["name"] = std::string(name);
    d["sm_count"] = sm_count;
    d["compute_capability"] = py::make_tuple(major, minor);
    d["driver_version"] = driver;
    d["runtime_version"] = runtime;
    return d;
  });

  // (memory type, device) of a pointer: 0 unregistered host, 1 host, 2 device, 3 managed.
  m.def("pointer_attributes", [](uintptr_t ptr) -> py::tuple {
    cudaPointerAttributes attr{};
    cudaError_t err = cudaPointerGetAttributes(&attr, reinterpret_cast<const void*>(ptr));
    if (err != cudaSuccess) {
      cudaGetLastError();
      return py::make_tuple(0, -1);
    }
    return py::make_tuple(static_cast<int>(attr.type), attr.device);
  });

  m.def("dlpack_info", &dlpack_info);
  m.def("make_dlpack", &make_dlpack, py::arg("owner"), py::arg("ptr"), py::arg("shape"), py::arg("strides"),
        py::arg("dtype_code"), py::arg("bits"), py::arg("device"));

  m.def("stream_synchronize", [](uintptr_t stream) {
    cudaError_t err;
    {
      py::gil_scoped_release nogil;
      err = cudaStreamSynchronize(reinterpret_cast<cudaStream_t>(stream));
    }
    if (err != cudaSuccess) throw std::runtime_error("cudaStreamSynchronize: " + cuda_message(err));
  });

  m.def("memset", [](uintptr_t ptr, int value, size_t nbytes, uintptr_t stream, int device) {
    DeviceGuard guard(device);
    cudaError_t err = cudaMemsetAsync(reinterpret_cast<void*>(ptr), value, nbytes, reinterpret_cast<cudaStream_t>(stream));
    if (err != cudaSuccess) {
      cudaGetLastError();
      throw std::runtime_error("cudaMemsetAsync: " + cuda_message(err));
    }
  }, py::arg("ptr"), py::arg("value"), py::arg("nbytes"), py::arg("stream") = 0, py::arg("device") = -1);

  py::class_<DeviceBuffer>(m, "DeviceBuffer")
      .def(py::init<size_t, int>(), py::arg("nbytes"), py::arg("device") = -1)
      .def_property_readonly("ptr", &DeviceBuffer::ptr)
      .def_property_readonly("nbytes", &DeviceBuffer::nbytes)
      .def_property_readonly("device", &DeviceBuffer::device)
      .def("upload", &DeviceBuffer::upload, py::arg("src"), py::arg("offset") = 0, py::arg("stream") = 0,
           py::arg("synchronize") = true)
      .def("download", &DeviceBuffer::download, py::arg("dst"), py::arg("offset") = 0, py::arg("stream") = 0);

  m.def("select_config",
        [](int64_t m_, int64_t n, int64_t k, int64_t group_size, bool zeros, int sm_count) {
          // Pointers only matter for their presence (zeros) here.
          w4a16_gemm_args_t a = make_args(m_, n, k, group_size, 0, k, 0, 0, zeros ? 16 : 0, 0, 1.f, 0, n);
          int config = -1;
          w4a16_status_t st = w4a16_select_config(&a, sm_count, &config);
          return py::make_tuple(static_cast<int>(st), config,
                                st == W4A16_OK ? std::string() : std::string(w4a16_last_error_message()));
        },
        py::arg("m"), py::arg("n"), py::arg("k"), py::arg("group_size"), py::arg("zeros"), py::arg("sm_count") = 0);

  m.def("describe_launch",
        [](int64_t m_, int64_t n, int64_t k, int64_t group_size, bool zeros, int config, int sm_count) {
          w4a16_gemm_args_t a = make_args(m_, n, k, group_size, 0, k, 0, 0, zeros ? 16 : 0, 0, 1.f, 0, n);
          char text[1024];
          w4a16_status_t st = w4a16_describe_launch(&a, config, sm_count, text, sizeof(text));
          return py::make_tuple(static_cast<int>(st), std::string(text),
                                st == W4A16_OK ? std::string() : std::string(w4a16_last_error_message()));
        },
        py::arg("m"), py::arg("n"), py::arg("k"), py::arg("group_size"), py::arg("zeros"), py::arg("config"),
        py::arg("sm_count") = 0);

  m.def("workspace_size",
        [](int64_t m_, int64_t n, int64_t k, int64_t group_size, uintptr_t x, int64_t ldx, uintptr_t w,
           uintptr_t scales, uintptr_t zeros, uintptr_t bias, float alpha, uintptr_t out, int64_t ldo, int config,
           int device) {
          w4a16_gemm_args_t a = make_args(m_, n, k, group_size, x, ldx, w, scales, zeros, bias, alpha, out, ldo);
          DeviceGuard guard(device);
          size_t bytes = 0;
          w4a16_status_t st = w4a16_workspace_size(&a, config, &bytes);
          return py::make_tuple(static_cast<int>(st), bytes,
                                st == W4A16_OK ? std::string() : std::string(w4a16_last_error_message()));
        });

  m.def("stream_is_capturing", [](uintptr_t stream) {
    cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
    cudaError_t err = cudaStreamIsCapturing(reinterpret_cast<cudaStream_t>(stream), &status);
    if (err != cudaSuccess) {
      cudaGetLastError();
      return false;
    }
    return status != cudaStreamCaptureStatusNone;
  });

  // Median time (ms) of `iters` back-to-back launches of one config on its real arguments, each between its
  // own pair of events, after `warmup` untimed ones. Used by autotuning; synchronises the stream.
  m.def("time_gemm",
        [](int64_t m_, int64_t n, int64_t k, int64_t group_size, uintptr_t x, int64_t ldx, uintptr_t w,
           uintptr_t scales, uintptr_t zeros, uintptr_t bias, float alpha, uintptr_t out, int64_t ldo, int config,
           uintptr_t workspace, size_t workspace_bytes, uintptr_t stream, int device, int warmup, int iters) {
          w4a16_gemm_args_t a = make_args(m_, n, k, group_size, x, ldx, w, scales, zeros, bias, alpha, out, ldo);
          std::vector<float> ms(std::max(iters, 1));
          w4a16_status_t st = W4A16_OK;
          std::string error;
          {
            py::gil_scoped_release nogil;
            DeviceGuard guard(device);
            auto s = reinterpret_cast<cudaStream_t>(stream);
            for (int i = 0; i < warmup && st == W4A16_OK; ++i) st = w4a16_gemm(&a, config, reinterpret_cast<void*>(workspace), workspace_bytes, s);
            std::vector<cudaEvent_t> events(2 * ms.size());
            cudaError_t err = cudaSuccess;
            for (auto& e : events)
              if (err == cudaSuccess) err = cudaEventCreate(&e);
            for (size_t i = 0; i < ms.size() && st == W4A16_OK && err == cudaSuccess; ++i) {
              err = cudaEventRecord(events[2 * i], s);
              st = w4a16_gemm(&a, config, reinterpret_cast<void*>(workspace), workspace_bytes, s);
              if (err == cudaSuccess) err = cudaEventRecord(events[2 * i + 1], s);
            }
            if (err == cudaSuccess) err = cudaStreamSynchronize(s);
            for (size_t i = 0; i < ms.size() && err == cudaSuccess && st == W4A16_OK; ++i)
              err = cudaEventElapsedTime(&ms[i], events[2 * i], events[2 * i + 1]);
            for (auto& e : events)
              if (e) cudaEventDestroy(e);
            if (st != W4A16_OK) error = w4a16_last_error_message();
            if (err != cudaSuccess && st == W4A16_OK) {
              st = W4A16_CUDA_ERROR;
              error = cuda_message(err);
            }
          }
          std::sort(ms.begin(), ms.end());
          return py::make_tuple(static_cast<int>(st), ms[ms.size() / 2], error);
        });

  m.def("gemm",
        [](int64_t m_, int64_t n, int64_t k, int64_t group_size, uintptr_t x, int64_t ldx, uintptr_t w,
           uintptr_t scales, uintptr_t zeros, uintptr_t bias, float alpha, uintptr_t out, int64_t ldo, int config,
           uintptr_t workspace, size_t workspace_bytes, uintptr_t stream, int device, uint32_t flags) {
          w4a16_gemm_args_t a = make_args(m_, n, k, group_size, x, ldx, w, scales, zeros, bias, alpha, out, ldo);
          a.flags = flags;
          w4a16_status_t st;
          {
            py::gil_scoped_release nogil;  // other Python threads keep running while we launch
            DeviceGuard guard(device);
            st = w4a16_gemm(&a, config, reinterpret_cast<void*>(workspace), workspace_bytes,
                            reinterpret_cast<cudaStream_t>(stream));
          }
          return status_tuple(st);
        });
}
