#pragma once
// Folder devices (protocol "files", link "folder"; file-reports.md "Folder devices"): each
// complete file the watcher (transport/folder_watch.hpp) finds is read and decided on
// (devices/folder_file.hpp): results from ASTM / HL7 / CSV files, else a file-type report of the
// sample its name carries. What it produced is committed to the outbox together with a state
// document "folder:<device>:<sha256>" naming where the file goes; only then is it moved to done/.
// A file whose digest is already remembered (taken before a crash, or dropped twice) is moved to
// done/ without producing anything again. A file that cannot be read goes to failed/ with
// <name>.error.txt and a device-log line with its FOLDER code.

#include <boost/asio/io_context.hpp>

#include "daemon/device_runtime.hpp"
#include "daemon/ingest_hand_off.hpp"
#include "devices/profile.hpp"
#include "transport/event_log.hpp"

namespace interfaced::daemon {

// Starts the device's watcher on the loop; it ends with dev->cancel (device_links::stop).
void start_folder_device(boost::asio::io_context& io, device_runtime* dev, const devices::profile_catalog& catalog,
                         ingest_hand_off& sink, transport::event_log log);

}  // namespace interfaced::daemon
