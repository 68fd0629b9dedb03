# What `cmake --install` puts where, and the Debian package CPack builds from it (`cpack -G DEB` in the build
# folder). Binaries to /usr/bin, the shipped configuration to /etc/rampart (conffiles: an operator's edits survive
# upgrades), the tokenizer to /usr/share/rampart, the systemd units, the documentation.
if(CMAKE_INSTALL_PREFIX_INITIALIZED_TO_DEFAULT)
  set(CMAKE_INSTALL_PREFIX /usr CACHE PATH "Where `cmake --install` puts Rampart" FORCE)  # so /etc/rampart
endif()
include(GNUInstallDirs)

install(TARGETS rampartd rampart-client rampart-admin rampart-alerts rampart-inspect rampart-bench
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES config/rampart.toml config/policy.toml config/monitor.example.toml
        DESTINATION ${CMAKE_INSTALL_FULL_SYSCONFDIR}/rampart)
install(DIRECTORY models/deepseek-v3-tokenizer DESTINATION ${CMAKE_INSTALL_DATADIR}/rampart)
install(FILES packaging/systemd/rampartd.service packaging/systemd/rampart-shard@.service
        DESTINATION lib/systemd/system)
install(FILES packaging/grafana/rampart-dashboard.json packaging/prometheus/rampart-rules.yml
        DESTINATION ${CMAKE_INSTALL_DATADIR}/rampart/observability)
install(FILES README.md docs/protocol.md docs/operations.md docs/policy.md docs/security.md docs/benchmarks.md
        DESTINATION ${CMAKE_INSTALL_DOCDIR})

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME rampart)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "Rampart developers <rampart@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "Inference server for DeepSeek-V3 MoE models that keeps serving registered users under attack")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_SET_DESTDIR ON)  # /etc/rampart is an absolute destination
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)  # Depends: from the binaries' shared libraries
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_COMPRESSION_TYPE gzip)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    "${CMAKE_CURRENT_SOURCE_DIR}/packaging/debian/postinst;${CMAKE_CURRENT_SOURCE_DIR}/packaging/debian/postrm;${CMAKE_CURRENT_SOURCE_DIR}/packaging/debian/conffiles")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
