# Installing the diagnostics library so other projects can link it:
#   find_package(leakscope CONFIG REQUIRED)  →  leakscope::diag (and ::collect, ::core)
#   pkg-config --cflags --libs leakscope
# and the `leakscope` CLI and example. tests/consumer/ builds an outside
# project against an installed tree both ways (docs/instrumenting.md).
if(LEAKSCOPE_FUZZ)
  return()
endif()
include(CMakePackageConfigHelpers)

install(TARGETS leakscope_core leakscope_collect leakscope_diag EXPORT leakscopeTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/diag/core/include/leakscope
  ${PROJECT_SOURCE_DIR}/diag/runtime/include/leakscope
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS leakscope leakscope-example RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
# The preload agents of `leakscope run`, which finds them in the libdir
# relative to its own bindir (diag/cli/CMakeLists.txt).
if(TARGET leakscope_preload)
  install(TARGETS leakscope_preload leakscope_preload_noheap
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
endif()

set(config_dir ${CMAKE_INSTALL_LIBDIR}/cmake/leakscope)
install(EXPORT leakscopeTargets NAMESPACE leakscope:: DESTINATION ${config_dir})
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/leakscope-config.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/leakscope-config.cmake INSTALL_DESTINATION ${config_dir})
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/leakscope-config-version.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/leakscope-config.cmake
  ${CMAKE_CURRENT_BINARY_DIR}/leakscope-config-version.cmake DESTINATION ${config_dir})

# pkg-config: the libraries are static, so everything they need is listed for
# a plain `pkg-config --libs` (no --static needed).
set(LEAKSCOPE_PC_REQUIRES "prometheus-cpp-core libdw libevent_core")
set(LEAKSCOPE_PC_CFLAGS "")
if(LEAKSCOPE_WITH_TCMALLOC)
  string(APPEND LEAKSCOPE_PC_REQUIRES " libtcmalloc")
  set(LEAKSCOPE_PC_CFLAGS "-DLEAKSCOPE_WITH_TCMALLOC=1")
endif()
# Relocatable: the prefix is found from where the .pc file is.
file(RELATIVE_PATH LEAKSCOPE_PC_TO_PREFIX /prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig /prefix)
configure_file(${CMAKE_CURRENT_LIST_DIR}/leakscope.pc.in ${CMAKE_CURRENT_BINARY_DIR}/leakscope.pc
  @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/leakscope.pc
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
