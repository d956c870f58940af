// Group commit: items bound for the database (finished runs, admissions) that arrive while it
// is busy go together. An item added while fewer than max_in_flight batches are out leaves at
// once, alone if need be, so a quiet daemon adds no wait; items added while every slot is
// busy wait and leave together, up to max_batch, as soon as a slot frees. The busier the
// daemon, the larger the batches and the fewer the statements and commits per item.
#pragma once

#include <algorithm>
#include <cstddef>
#include <functional>
#include <iterator>
#include <utility>
#include <vector>

namespace flowgres::daemon {

template <typename Item>
class GroupCommit {
public:
    // Sends a batch; whoever gets its answer calls answered() once.
    using Write = std::function<void(std::vector<Item> batch)>;

    GroupCommit(size_t max_batch, size_t max_in_flight, Write write)
        : max_batch_(max_batch), max_in_flight_(max_in_flight), write_(std::move(write)) {}

    void add(Item item) {
        waiting_.push_back(std::move(item));
        start();
    }

    // A batch that failed as a whole, sent again item by item (so that only the item at fault
    // gets the error): each counts as a batch out, whatever the slots.
    void resend_alone(std::vector<Item> batch) {
        for (Item &item : batch) {
            in_flight_++;
            std::vector<Item> alone;
            alone.push_back(std::move(item));
            write_(std::move(alone));
        }
    }

    // A batch's answer came back: its slot frees, and what waited leaves.
    void answered() {
        in_flight_--;
        start();
    }

private:
    void start() {
        while (!waiting_.empty() && in_flight_ < max_in_flight_) {
            size_t count = std::min(waiting_.size(), max_batch_);
            std::vector<Item> batch(std::make_move_iterator(waiting_.begin()),
                                    std::make_move_iterator(waiting_.begin() + static_cast<long>(count)));
            waiting_.erase(waiting_.begin(), waiting_.begin() + static_cast<long>(count));
            in_flight_++;
            write_(std::move(batch));
        }
    }

    const size_t max_batch_;
    const size_t max_in_flight_;
    Write write_;
    size_t in_flight_ = 0;
    std::vector<Item> waiting_;
};

}  // namespace flowgres::daemon
