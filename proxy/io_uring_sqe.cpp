// Built into pglens-io_uring only (LIBURING_INTERNAL makes liburing.h declare io_uring_get_sqe
// instead of defining it inline, so Asio's calls land here).
//
// Why: Boost 1.81's io_uring service fills some submission entries without setting their
// user_data (IORING_OP_ASYNC_CANCEL in cancel_ops/cancel_ops_by_key, TIMEOUT_REMOVE in run),
// and liburing 2.3's prep functions do not clear it either. Such an entry keeps the user_data
// of whatever used its ring slot before, usually some socket's read queue, so its completion
// (0 for a cancel or a timeout removal that worked) is taken for that queue's: a read "returns"
// 0 bytes (a spurious end of file: "the server connection was lost"), and the real completion
// later lands on the next read. Upstream Asio clears user_data in get_sqe (1.28+); this does the
// same one level down, for every entry.
#include <liburing.h>

extern "C" struct io_uring_sqe* io_uring_get_sqe(struct io_uring* ring) {
  struct io_uring_sqe* sqe = _io_uring_get_sqe(ring);
  if (sqe) io_uring_sqe_set_data(sqe, nullptr);
  return sqe;
}
