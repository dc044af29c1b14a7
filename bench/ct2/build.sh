#!/bin/sh
# Builds the same-machine CTranslate2 peer of the translation benchmarks (bench/compare_translate.sh):
# CTranslate2 CPU-only twice, with OpenBLAS (its configuration of ../shared/bench/peers/RESULTS-translation.md)
# and with oneDNN (the backend that gives it int8 on a CPU without MKL), the driver bench/ct2/translate.cpp
# against each, and a random model of the benchmark's shape (bench/ct2/make_model.py).
#
# usage: bench/ct2/build.sh CT2_SOURCE [OUT=the repo's build/ct2]
#   CT2_SOURCE: a CTranslate2 source tree with the submodules third_party/cpu_features and
#   third_party/spdlog (git clone --recursive -b v4.8.1 https://github.com/OpenNMT/CTranslate2; 4.8.1 is
#   the version of the reference figures). Nothing in it is modified.
# Writes OUT/{openblas,dnnl}/ (installs), OUT/ct2_translate-{openblas,dnnl}, OUT/model/.
# Needs cmake, g++, libopenblas-openmp-dev (not libopenblas-dev: it switches the system BLAS to the
# pthread variant, which Debian's torch must not get), libdnnl-dev, libfmt-dev, nlohmann-json3-dev, and
# /usr/bin/python3 with numpy.
set -eu
[ $# -ge 1 ] || { echo "usage: $0 CT2_SOURCE [OUT=the repo's build/ct2]" >&2; exit 2; }
SRC=$(cd "$1" && pwd)
OUT=""
if [ $# -ge 2 ]; then mkdir -p "$2" && OUT=$(cd "$2" && pwd); fi
cd "$(dirname "$0")/../.."
OUT=${OUT:-$PWD/build/ct2}
mkdir -p "$OUT"
for dir in third_party/cpu_features third_party/spdlog; do
  [ -f "$SRC/$dir/CMakeLists.txt" ] || { echo "$0: $SRC/$dir is empty (clone with --recursive)" >&2; exit 1; }
done
OPENBLAS=/usr/lib/x86_64-linux-gnu/openblas-openmp
[ -f "$OPENBLAS/libopenblas.so.0" ] || { echo "$0: needs libopenblas-openmp-dev ($OPENBLAS)" >&2; exit 1; }

# CTranslate2 4.8's oneDNN Conv1D uses the oneDNN 3 API; Debian 12 has oneDNN 2.6. Conv1D (Whisper only)
# is compiled without oneDNN instead, which leaves it on CTranslate2's own im2col + GEMM path.
cat > "$OUT/conv1d_without_dnnl.cmake" <<'EOF'
set_source_files_properties(src/ops/conv1d_cpu.cc PROPERTIES COMPILE_OPTIONS -UCT2_WITH_DNNL)
EOF

build() {  # build NAME CMAKE_FLAGS...
  name=$1
  shift
  mkdir -p "$OUT/build-$name"
  echo "building CTranslate2 with $name (log: $OUT/build-$name/build.log)"
  (cd "$OUT/build-$name" &&
    cmake "$SRC" -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$OUT/$name" -DWITH_CUDA=OFF -DWITH_MKL=OFF \
      -DOPENMP_RUNTIME=COMP -DBUILD_CLI=OFF -DBUILD_TESTS=OFF "$@" &&
    make -j2 && make install) > "$OUT/build-$name/build.log" 2>&1 ||
    { tail -20 "$OUT/build-$name/build.log" >&2; exit 1; }
  g++ -O2 -std=c++17 bench/ct2/translate.cpp -o "$OUT/ct2_translate-$name" -I"$OUT/$name/include" \
    -L"$OUT/$name/lib" -lctranslate2 -lfmt -Wl,-rpath,"$OUT/$name/lib"
}
# The install's rpath pins the openmp OpenBLAS whatever the system's libblas alternative is.
build openblas -DWITH_OPENBLAS=ON -DOPENBLAS_INCLUDE_DIR=/usr/include/x86_64-linux-gnu/openblas-openmp \
  -DOPENBLAS_LIBRARY="$OPENBLAS/libopenblas.so.0" -DCMAKE_INSTALL_RPATH="$OPENBLAS"
build dnnl -DWITH_DNNL=ON -DCMAKE_PROJECT_INCLUDE="$OUT/conv1d_without_dnnl.cmake"
/usr/bin/python3 bench/ct2/make_model.py "$OUT/model" --ct2-python "$SRC/python"
echo "done: $OUT"
