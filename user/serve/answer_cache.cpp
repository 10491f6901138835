#include "serve/answer_cache.h"

namespace memtop {

AnswerCache::Body AnswerCache::get(const std::shared_ptr<const Report>& r, const std::string& key,
                                   const std::function<std::string()>& make) {
    std::promise<Body> made;
    std::shared_future<Body> answer;
    bool maker = false;
    {
        std::lock_guard<std::mutex> lock(mu_);
        if (report_ != r) {  // a newer report (or an older one, asked late): start over
            report_ = r;
            answers_.clear();
        }
        if (auto it = answers_.find(key); it != answers_.end()) {
            answer = it->second;
        } else if (answers_.size() < max_answers_) {
            answer = made.get_future().share();
            answers_.emplace(key, answer);
            maker = true;
        }
    }
    if (!answer.valid()) return std::make_shared<const std::string>(make());  // over the bound
    // Made outside the lock: lookups of other answers do not wait for it.
    if (maker) {
        try {
            made.set_value(std::make_shared<const std::string>(make()));
        } catch (...) {
            made.set_exception(std::current_exception());
        }
    }
    return answer.get();
}

size_t AnswerCache::size() const {
    std::lock_guard<std::mutex> lock(mu_);
    return answers_.size();
}

}  // namespace memtop
