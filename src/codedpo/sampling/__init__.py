"""On-policy sampling and greedy evaluation generation (``codedpo sample``), and code extraction.

One request per sample: the prompt's token ids (the problem as one user turn, rendered with the
tokenizer's own chat template), the sample's seed and the stop tokens read from the model's files.
Both backends take the same requests and give back generated token ids; the same code then cuts
them at the first stop token, decodes them and writes the records, so the two backends differ
only in how they run the model.

- :mod:`codedpo.sampling.sample`: ``codedpo sample`` (problems in, sample records out);
- :mod:`codedpo.sampling.extract`: ``codedpo extract`` (runnable code out of a response);
- :mod:`codedpo.sampling.requests`: prompts, per-sample seeds, requests;
- :mod:`codedpo.sampling.stops`: stop tokens from ``generation_config.json``, the tokenizer and
  the chat template;
- :mod:`codedpo.sampling.records`: stop handling, decoding, sample records, provenance;
- :mod:`codedpo.sampling.hf_backend`: transformers (any device; the default);
- :mod:`codedpo.sampling.vllm_backend`: vLLM (CUDA GPUs; imported only when chosen).
"""
