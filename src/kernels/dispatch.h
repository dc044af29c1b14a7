// Run-time ISA dispatch for hot loops: the compiler emits an AVX-512, an AVX2+FMA and a baseline
// copy of the function and the loader picks one for the CPU it runs on.
#pragma once

#define TCAT_DISPATCH __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
