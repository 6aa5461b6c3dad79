# Checks that the built SIMD kernels still hold their software prefetches: every kernel unit that
# names a prefetch_* function (prefetch.h's, or a helper of its own) must have at least as many
# prefetch instructions in its object as it has such names (each call inlines to one or more). Prefetches do not
# change any output, so no other test notices when a compiler deletes them, yet decoding loses up
# to a third of its speed (src/kernels/prefetch.h says how GCC 12 did that once).
#   cmake -DOBJDUMP=... -DOBJECTS="a.o|b.o" -DSOURCE_DIR=src/kernels -P prefetch_instructions.cmake
string(REPLACE "|" ";" objects "${OBJECTS}")
file(GLOB sources ${SOURCE_DIR}/x86/*.cpp ${SOURCE_DIR}/arm/*.cpp)
set(checked 0)
set(failures "")
foreach(source IN LISTS sources)
  file(READ ${source} text)
  string(REGEX REPLACE "//[^\n]*" "" text "${text}")  # comments name the helpers too
  # Calls of prefetch.h's helpers and of the units' own prefetch_* helpers (and their definitions).
  string(REGEX MATCHALL "(^|[^A-Za-z0-9_.])prefetch_[a-z_]+(<[^>]*>)?\\(" call_sites "${text}")
  list(LENGTH call_sites calls)
  get_filename_component(name ${source} NAME)
  get_filename_component(arch_dir ${source} DIRECTORY)
  get_filename_component(arch ${arch_dir} NAME)
  set(object "")
  foreach(candidate IN LISTS objects)
    if(candidate MATCHES "/${arch}/${name}\\.(o|obj)$")
      set(object ${candidate})
    endif()
  endforeach()
  if(calls EQUAL 0 OR object STREQUAL "")
    continue()  # no prefetches asked for, or a unit of another architecture
  endif()
  execute_process(COMMAND ${OBJDUMP} -d ${object} OUTPUT_VARIABLE listing RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${OBJDUMP} -d ${object} failed (${rc})")
  endif()
  string(REGEX MATCHALL "[ \t](prefetch(t0|t1|t2|nta|w)|prfm)[ \t]" found "${listing}")
  list(LENGTH found count)
  message(STATUS "${arch}/${name}: ${calls} call sites, ${count} prefetch instructions")
  if(count LESS calls)
    string(APPEND failures "\n  ${arch}/${name}: ${calls} prefetch call sites but ${count} instructions")
  endif()
  math(EXPR checked "${checked} + 1")
endforeach()
if(NOT failures STREQUAL "")
  message(FATAL_ERROR "kernels lost their software prefetches:${failures}")
endif()
if(checked EQUAL 0)
  message(FATAL_ERROR "no kernel object with prefetch calls found among: ${OBJECTS}")
endif()
