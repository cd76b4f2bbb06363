# install.cmake — what `cmake --install` puts where, and the Debian package
# (`cpack -G DEB`) made from the same rules.
#
# Installed always: bin/timber, its man page, bash and zsh completions and
# the documentation.  The test helpers (timber-gen, timber-refcheck, the
# fixture writers) never are.  libtimber, its headers and timber.pc belong
# to the component "dev", installed by default only with
# -DTIMBER_INSTALL_LIBRARY=ON (`cmake --install build --component dev`
# installs them from any build).
include(GNUInstallDirs)

# ---- the program ----------------------------------------------------------
install(TARGETS timber RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# ---- the man page ---------------------------------------------------------
# src/cli/timber.1.in sits beside the help texts it must agree with
# (tests/install/man_help.py compares them); configure_file fills in the
# version, and it is installed compressed, as Debian's policy asks.
configure_file(src/cli/timber.1.in man/timber.1 @ONLY)
find_program(TIMBER_GZIP gzip)
if(TIMBER_GZIP)
  add_custom_command(OUTPUT man/timber.1.gz
    COMMAND ${TIMBER_GZIP} -9nc timber.1 > timber.1.gz
    DEPENDS ${CMAKE_CURRENT_BINARY_DIR}/man/timber.1
    WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/man
    COMMENT "Compressing the man page")
  add_custom_target(timber_man ALL DEPENDS man/timber.1.gz)
  set(TIMBER_MAN_FILE ${CMAKE_CURRENT_BINARY_DIR}/man/timber.1.gz)
else()
  set(TIMBER_MAN_FILE ${CMAKE_CURRENT_BINARY_DIR}/man/timber.1)
endif()
install(FILES ${TIMBER_MAN_FILE} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)

# ---- shell completions ----------------------------------------------------
# bash-completion loads completions/<command> on demand from every
# $XDG_DATA_DIRS entry (/usr/local/share and /usr/share by default).
install(FILES src/cli/complete/timber.bash
        DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions
        RENAME timber)
# Debian's zsh searches /usr/share/zsh/vendor-completions for packages and
# /usr/local/share/zsh/site-functions for everything else; the choice is
# made when installing, as the prefix may be given only then (--prefix).
install(CODE "
  if(CMAKE_INSTALL_PREFIX STREQUAL \"/usr\")
    set(_timber_zsh_dir \"\${CMAKE_INSTALL_PREFIX}/share/zsh/vendor-completions\")
  else()
    set(_timber_zsh_dir \"\${CMAKE_INSTALL_PREFIX}/share/zsh/site-functions\")
  endif()
  file(INSTALL DESTINATION \"\${_timber_zsh_dir}\" TYPE FILE
       FILES \"${CMAKE_CURRENT_SOURCE_DIR}/src/cli/complete/_timber\")
")

# ---- documentation --------------------------------------------------------
install(FILES README.md LICENSE DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/docs
        FILES_MATCHING PATTERN "*.md")

# ---- the library (component dev) ------------------------------------------
if(TIMBER_INSTALL_LIBRARY)
  set(_timber_dev_default "")
else()
  set(_timber_dev_default EXCLUDE_FROM_ALL)
endif()
install(TARGETS timber_lib ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        COMPONENT dev ${_timber_dev_default})
install(FILES include/timber.h
              ${CMAKE_CURRENT_BINARY_DIR}/include/timber_version.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        COMPONENT dev ${_timber_dev_default})
# libtimber is static, so a program linking it links its dependencies too:
# they are in Requires and Libs, not .private (`pkg-config --static` would
# also pull OpenBLAS's own static dependencies, libgfortran's among them,
# which a shared OpenBLAS does not need).  The prefix is found
# from where the file lies, so `--prefix` at install time is honoured.
file(RELATIVE_PATH TIMBER_PC_TO_PREFIX
     /prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig /prefix)
string(REGEX REPLACE "/$" "" TIMBER_PC_TO_PREFIX "${TIMBER_PC_TO_PREFIX}")
configure_file(cmake/timber.pc.in timber.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/timber.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig
        COMPONENT dev ${_timber_dev_default})

# ---- the Debian package ---------------------------------------------------
# `cpack -G DEB` in the build directory (or `cpack --config
# build/CPackConfig.cmake -G DEB`) writes timber_<version>_<arch>.deb.
# Depends comes from dpkg-shlibdeps (package dpkg-dev) run on the binary;
# gnuplot, which only `timber erank --plot` uses, is a Recommends.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME timber)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "timber developers <timber@localhost>"
    CACHE STRING "The Maintainer field of the Debian package")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "training-free refinement of an LLM Instruct checkpoint with its Base")
# The Description's first line is the summary; CPack indents these lines.
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
"timber refines an Instruct checkpoint (safetensors) with its paired Base
checkpoint, without training (Timber, arXiv 2509.23595): for every weight
matrix the delta D = Instruct - Base keeps its top ceil(eRank(D)) singular
components and its tail is attenuated.  It also reports effective ranks and
inspects checkpoints.")
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "gnuplot-nox | gnuplot")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
