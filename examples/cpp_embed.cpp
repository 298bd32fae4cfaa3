// cpp_embed.cpp - deepseek.h from C++: RAII owners for the model and session, and the
// streamed text collected into a std::string through the callback's user pointer.
//
//     c++ -std=c++11 -O2 -I. examples/cpp_embed.cpp -o cpp_embed -lpthread
//     ./cpp_embed models/SmolLM2-135M-Instruct.Q4_1.gguf
#define DEEPSEEK_IMPLEMENTATION
#include "deepseek.h"
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>

struct ModelFree { void operator()(ds_model *m) const { ds_model_free(m); } };
struct SessionFree { void operator()(ds_session *s) const { ds_session_free(s); } };
using Model = std::unique_ptr<ds_model, ModelFree>;
using Session = std::unique_ptr<ds_session, SessionFree>;

static void check(ds_status s) {
    if (s != DS_OK) throw std::runtime_error(ds_last_error());
}

// Completes prompt greedily; the library calls back with each piece of text.
static std::string complete(ds_session *session, const std::string &prompt, int max_tokens) {
    std::string out;
    ds_generate_config cfg = {};
    cfg.max_tokens = max_tokens;
    cfg.user = &out;
    cfg.on_token = [](void *user, int32_t, const char *text, size_t len) -> int {
        static_cast<std::string *>(user)->append(text, len);
        return 0;
    };
    check(ds_generate(session, prompt.c_str(), &cfg, nullptr));
    return out;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s MODEL.gguf\n", argv[0]);
        return 2;
    }
    try {
        ds_model *m = nullptr;
        ds_session *s = nullptr;
        check(ds_model_load(argv[1], nullptr, &m));
        Model model(m);
        check(ds_session_create(model.get(), nullptr, &s));
        Session session(s);
        std::string answer = complete(session.get(), "The three primary colours are", 24);
        std::printf("completion: %s\n", answer.c_str());
    } catch (const std::exception &e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
    return 0;
}
