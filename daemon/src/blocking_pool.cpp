// BlockingPool: a mutex-guarded queue, worker threads, and a uv_async_t back to the loop.
#include "blocking_pool.hpp"

namespace flowgres::daemon {

BlockingPool::BlockingPool(uv_loop_t *loop, size_t threads, size_t max_queued) : loop_(loop), max_queued_(max_queued) {
    uv_async_init(loop_, &async_, on_finished);
    async_.data = this;
    for (size_t i = 0; i < threads; i++) threads_.emplace_back([this] { run_thread(); });
}

BlockingPool::~BlockingPool() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stopping_ = true;
        closed_ = true;
    }
    wake_.notify_all();
    for (auto &thread : threads_) thread.join();
}

bool BlockingPool::submit(std::function<void()> work, std::function<void(bool cancelled)> done) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (stopping_ || queued_.size() >= max_queued_) return false;
        queued_.push_back(Task{std::move(work), std::move(done)});
    }
    wake_.notify_one();
    return true;
}

size_t BlockingPool::waiting() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return queued_.size();
}

void BlockingPool::run_thread() {
    for (;;) {
        Task task;
        {
            std::unique_lock<std::mutex> lock(mutex_);
            wake_.wait(lock, [this] { return stopping_ || !queued_.empty(); });
            if (queued_.empty()) return;  // stopping, nothing left
            task = std::move(queued_.front());
            queued_.pop_front();
            running_++;
        }
        task.work();
        std::lock_guard<std::mutex> lock(mutex_);
        running_--;
        finished_.push_back(std::move(task));
        if (!closed_) uv_async_send(&async_);
    }
}

void BlockingPool::on_finished(uv_async_t *handle) { static_cast<BlockingPool *>(handle->data)->deliver(); }

void BlockingPool::deliver() {
    std::deque<Task> ready;
    bool all_done;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        ready.swap(finished_);
        all_done = stopping_ && running_ == 0 && queued_.empty();
    }
    for (auto &task : ready) task.done(task.cancelled);
    if (all_done && stopped_ && !closed_) {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            closed_ = true;
        }
        auto stopped = std::move(stopped_);
        uv_close(reinterpret_cast<uv_handle_t *>(&async_), nullptr);
        stopped();
    }
}

void BlockingPool::stop(std::function<void()> stopped) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stopping_ = true;
        for (auto &task : queued_) {
            task.cancelled = true;
            finished_.push_back(std::move(task));
        }
        queued_.clear();
    }
    wake_.notify_all();
    stopped_ = std::move(stopped);
    deliver();
}

}  // namespace flowgres::daemon
