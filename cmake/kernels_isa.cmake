# lightboat_kernels_isa(TARGET): adds the SIMD kernel units of src/kernels/<arch>/ to TARGET, each
# compiled with its own ISA flags (only the ones for the architecture being built). The rest of
# the library keeps the baseline flags; kernels/dispatch.cpp picks a table at run time.
function(lightboat_kernels_isa target)
  set(dir ${PROJECT_SOURCE_DIR}/src/kernels)
  # The reference and the SIMD kernels must agree on rounding: no fused multiply-add contraction
  # of plain C++ arithmetic anywhere in the library (intrinsics are explicit and unaffected).
  # GCC contracts by default where the baseline has FMA (aarch64): the reference's
  # nearest_int(x * iscale) would then round once instead of twice and differ from llama.cpp's
  # reference quantizers on near-ties.
  set(common -ffp-contract=off)
  target_compile_options(${target} PRIVATE -ffp-contract=off)
  if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$")
    set(avx2 -mavx2 -mfma -mf16c ${common})
    set(avx512 ${avx2} -mavx512f -mavx512bw -mavx512vl -mavx512vnni)
    set(avx2_units ${dir}/x86/avx2.cpp ${dir}/x86/avx2_k.cpp ${dir}/x86/avx2_attention.cpp)
    set(avx512_units ${dir}/x86/avx512.cpp ${dir}/x86/avx512_attention.cpp ${dir}/x86/avx512_quantize.cpp)
    # VBMI byte permutes and GFNI for the decode kernels (x86/vbmi.cpp's table), and AMX-INT8 tiles
    # (GCC 11+, Clang 12+) for the units that hold tile code too; dispatch.cpp checks the CPU (and
    # for the tiles asks Linux) first.
    set(vbmi ${avx512} -mavx512vbmi -mgfni)
    set(amx ${vbmi} -mamx-tile -mamx-int8)
    set(vbmi_units ${dir}/x86/vbmi.cpp ${dir}/x86/amx_decode.cpp ${dir}/x86/amx_interleaved.cpp)
    set(amx_units ${dir}/x86/amx.cpp ${dir}/x86/amx_k.cpp ${dir}/x86/amx_q6_k.cpp)
    target_sources(${target} PRIVATE ${avx2_units} ${avx512_units} ${vbmi_units} ${amx_units})
    set_source_files_properties(${avx2_units} PROPERTIES COMPILE_OPTIONS "${avx2}")
    set_source_files_properties(${avx512_units} PROPERTIES COMPILE_OPTIONS "${avx512}")
    set_source_files_properties(${vbmi_units} PROPERTIES COMPILE_OPTIONS "${vbmi}")
    set_source_files_properties(${amx_units} PROPERTIES COMPILE_OPTIONS "${amx}")
    # AMX-BF16 tiles for F16 weights (x86/amx_f16.cpp registers them only where CPUID has them).
    set(amx_bf16_units ${dir}/x86/amx_f16.cpp)
    target_sources(${target} PRIVATE ${amx_bf16_units})
    set_source_files_properties(${amx_bf16_units} PROPERTIES COMPILE_OPTIONS "${amx};-mamx-bf16")
  elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64|ARM64)$")
    file(GLOB arm_sources CONFIGURE_DEPENDS ${dir}/arm/*.cpp)
    target_sources(${target} PRIVATE ${arm_sources})
    set_source_files_properties(${arm_sources} PROPERTIES COMPILE_OPTIONS
                                "-march=armv8.2-a+dotprod+fp16;${common}")
  endif()
endfunction()
