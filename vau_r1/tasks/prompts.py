"""Prompt texts, one constant per preset, exactly as the official VAU-R1 code spells them.

Placeholders are upper-case names in square brackets (``[QUESTION]``, ``[OPTION]``, ...); they are
filled in one pass by :func:`vau_r1.tasks.presets.render_prompt`. Trailing spaces and newlines are part
of the texts: the official templates end in ``". "`` or ``"\\n"``, and the QA evaluation prompt keeps
the 12-space indentation of the f-string it came from. Do not reformat these strings.

Sources (``docs/paper.md`` §4, official repo GVCLab/VAU-R1 at ``845c33b``):

* ``*_GRPO``: ``src/open_r1/trainer/grpo_trainer_video_{qa,gqa,cls}.py`` (training, text before video);
* ``*_SFT``: ``src/sft/sft_{qa,grounding,cls,description}.py`` (HEAD, no-think);
* ``*_EVAL_*``: ``src/evaluation/inference_{qa,tag,cls,reasoning}_qwen.py`` (video before text);
* ``DEFAULT_*``: this project's cleaned prompts (they ask for what the rewards parse; §10 item 21).
"""

from __future__ import annotations

# --- fixed questions and option lists -------------------------------------------------------------

#: TAG question of the GRPO trainer and the think evaluation (``grpo_gqa.py:434``).
TAG_QUESTION_THINK = (
    "Is there any anomaly in the video? If yes, please answer 'Anomaly' and present the precise anomaly time "
    "period. If no, please answer 'Normal' and output time period as <glue>[-1.0, -1.0]</glue>."
)
#: TAG question of the SFT script and the no-think evaluation (``sft_grounding.py:129``).
TAG_QUESTION_NO_THINK = (
    "Is there any anomaly in the video? If yes, output time period as <glue>[start_time, end_time]</glue>, "
    "replace start_time and end_time with the actual time period in seconds. If no anomaly, output "
    "<glue>[-1.0, -1.0]</glue>."
)
#: ``[OPTION]`` of the TAG GRPO prompt: ``str(['Normal', 'Anomaly'])``.
TAG_OPTION_GRPO = "['Normal', 'Anomaly']"
#: ``[OPTION]`` of the TAG think evaluation: a literal string without quotes, order reversed.
TAG_OPTION_EVAL = "[Anomaly, Normal]"

#: CLS question (``grpo_cls.py:129``, ``inference_cls_qwen.py``).
CLS_QUESTION = "What type of anomaly appears in the video? If no anomaly appears, please answer 'Normal'."
#: ``FIXED_OPTION`` of the CLS code: ``str(list(CLASS_LABELS))``, written out as in the source.
CLS_FIXED_OPTION = (
    "['Abuse', 'Agriculture', 'Arrest', 'Arson', 'Assault', 'Explosion', 'Fighting', 'Fire', 'Food Safety', "
    "'Medical Abnormality', 'Natural Hazard', 'Normal', 'Object_falling', 'People_falling', 'Robbery', "
    "'Shooting', 'Stealing', 'Traffic_accident', 'Vandalism', 'Water_incident']"
)

# --- paper_grpo: GRPO training templates (text -> video) --------------------------------------------

QA_GRPO = """Answer the question: "[QUESTION]" according to the content of the video. Select the answer from :[OPTION].

Output your thought process within the <think> </think> tags, including analysis with either specific time ranges (xx.xx to xx.xx).

Then, provide your answer within the <answer> </answer> tags, output the corresponding letter of the option.

For example: <think> your detailed reasoning process here </think><answer> your final answer here </answer>. """  # noqa: E501

# Ends with ". \n": docs/paper.md §4.2 shows the trailing space and a final line break.
TAG_GRPO = """Answer the question: "[QUESTION]" according to the content of the video. Select the answer from :[OPTION].

Output your thought process within the <think> </think> tags with detailed analysis.

Then, provide your answer within the <answer> </answer> tags, output the corresponding letter of the option. At the same time, in the <glue> </glue> tags, present the precise time period in seconds of the video clips on which you base your answer to this question in the format of [s1, e1]. 

For example: <think> your detailed reasoning process here </think><answer> your final answer here </answer><glue>[5.2, 10.4]</glue>. 
"""  # noqa: E501, W291

CLS_GRPO = """Answer the question: "[QUESTION]" according to the content of the video. Select the answer from :[OPTION].

Output your thought process within the <think> </think> tags.

Then, provide your answer within the <answer> </answer> tags, output the corresponding letter of the option.

For example: <think> your reasoning process here </think><answer> your final answer here </answer>. """  # noqa: E501

# --- paper_sft: SFT templates (text -> video) --------------------------------------------------------

# [OPTION] = the four "A. text" options joined by one space.
QA_SFT = """Answer the question: "[QUESTION]" according to the content of the video. Select the answer from :[OPTION]. The expected format is:<answer> Output the corresponding letter of the option. (A, B, C, or D) </answer>. """  # noqa: E501

# Same text as the no-think TAG evaluation, which ends with a line break in the source.
TAG_SFT = """Answer the question: "[QUESTION]" according to the content of the video.

Provide your answer within the <glue> </glue> tags, present the precise time period in seconds of the video clips on which you base your answer to this question in the format of [s1, e1]. 

For example: <glue>[5.2, 10.4]</glue>.
"""  # noqa: E501, W291

CLS_SFT = """Answer the question: "[QUESTION]" according to the content of the video. Select the answer from :[OPTION]. The expected format is: <answer> Output the corresponding option here </answer> """  # noqa: E501

# Initial-commit CoT variant: docs/paper.md §4.3 quotes the added sentence, not where it went. It is placed
# before "The expected format is:", where the evaluation think prompt has it [inferred].
CLS_SFT_THINK = """Answer the question: "[QUESTION]" according to the content of the video. Select the answer from :[OPTION]. When the user asks a question, you should first carefully reason through the problem internally, and then present the final option. The expected format is: <answer> Output the corresponding option here </answer> """  # noqa: E501

REASONING_SFT = (
    "You are an advanced anomaly detector assigned to analyze a video. Please identify any unusual or suspicious "
    "events that occur in the scene. Do not focus on any text or watermarks that might appear. Please provide a "
    "description for the video."
)

# --- paper_eval_think / paper_eval_no_think: evaluation prompts (video -> text) ----------------------

# The f-string of inference_qa_qwen.py: opening line break, 12-space indentation, literal quotes
# around the letter prefixes, a trailing space after two sentences, and "\n" + 12 spaces at the end.
# The think and no-think texts share everything up to the options.
_QA_EVAL_HEAD = """
            You are a helpful AI assistant performing video anomaly detection reasoning. 
            Below is a video description and a reasoning process. Based on this, answer the following multiple-choice question correctly.

            ### Question:
            [QUESTION]

            ### Options:
            "A. "[OPTION_A]
            "B. "[OPTION_B]
            "C. "[OPTION_C]
            "D. "[OPTION_D]

"""  # noqa: E501, W291
QA_EVAL_THINK = _QA_EVAL_HEAD + """            When the user asks a question, you should first carefully reason through the problem internally, and then present the final option.
            The expected format is: <think> your detailed reasoning process here </think><answer> Please only output one option letter! (A, B, C, or D) </answer>. 
            """  # noqa: E501, W291
QA_EVAL_NO_THINK = _QA_EVAL_HEAD + """            Please only output one option letter (A, B, C, or D). Please do not output other words.
            """  # noqa: E501

# GRPO text with "letter of the option" -> "option"; no space after the last period.
TAG_EVAL_THINK = """Answer the question: "[QUESTION]" according to the content of the video. Select the answer from :[OPTION].

Output your thought process within the <think> </think> tags with detailed analysis.

Then, provide your answer within the <answer> </answer> tags, output the corresponding option. At the same time, in the <glue> </glue> tags, present the precise time period in seconds of the video clips on which you base your answer to this question in the format of [s1, e1]. 

For example: <think> your detailed reasoning process here </think><answer> your final answer here </answer><glue>[5.2, 10.4]</glue>.
"""  # noqa: E501, W291

TAG_EVAL_NO_THINK = TAG_SFT

CLS_EVAL_THINK = """Answer the question: "[QUESTION]" according to the content of the video. Select one of the answer from :[OPTION]. When the user asks a question, you should first carefully reason through the problem internally, and then present the final option. The expected format is: <think> Your detailed reasoning process here </think><answer> Output the corresponding option here </answer> """  # noqa: E501

CLS_EVAL_NO_THINK = """Answer the question: "[QUESTION]" according to the content of the video. Select one of the answer from :[OPTION]. The expected format is: <answer> Output the corresponding option here </answer> """  # noqa: E501

#: Reasoning turn 1 (``inference_reasoning_qwen.py``): the VAU-Eval "Description".
REASONING_EVAL_TURN1 = (
    "You are an advanced anomaly detector assigned to analyze a video. Please identify any unusual or suspicious "
    "events that occur in the scene. Do not focus on any text or watermarks that might appear. Provide a "
    "description in five sentences."
)
#: Reasoning turn 2: the VAU-Eval "Analysis".
REASONING_EVAL_TURN2 = (
    "Explain in detail whether (and how) any anomaly occurs in the video, and the reasoning behind it."
)

# --- default / default_no_think: cleaned prompts for training and evaluation -------------------------
# [OPTIONS] = one "A. text" line per option; [DURATION] = "The video lasts 12.3 seconds. " or "";
# [OPTION] (CLS) = the class labels joined by ", ".

DEFAULT_QA_THINK = """Answer the question: "[QUESTION]" according to the content of the video. Select the answer from the options below.
[OPTIONS]

Output your thought process within the <think> </think> tags, including analysis with specific time ranges in seconds where they help.

Then, provide your answer within the <answer> </answer> tags: output only the letter of the correct option (A, B, C or D).

For example: <think> your detailed reasoning process here </think><answer> the letter of the correct option </answer>"""  # noqa: E501

DEFAULT_QA_NO_THINK = """Answer the question: "[QUESTION]" according to the content of the video. Select the answer from the options below.
[OPTIONS]

Provide your answer within the <answer> </answer> tags: output only the letter of the correct option (A, B, C or D), with no other words.

For example: <answer> the letter of the correct option </answer>"""  # noqa: E501

DEFAULT_TAG_THINK = """[DURATION]Is there any anomaly in the video? If yes, answer Anomaly and give the precise time period of the anomaly in seconds. If no, answer Normal and give the time period [-1.0, -1.0].

Output your thought process within the <think> </think> tags with detailed analysis.

Then, provide your answer within the <answer> </answer> tags: output exactly one word, Normal or Anomaly. Right after it, in the <glue> </glue> tags, give the time period in seconds in the format [start, end].

For example: <think> your detailed reasoning process here </think><answer>Anomaly</answer><glue>[5.2, 10.4]</glue> or <think> your detailed reasoning process here </think><answer>Normal</answer><glue>[-1.0, -1.0]</glue>"""  # noqa: E501

DEFAULT_TAG_NO_THINK = """[DURATION]Is there any anomaly in the video? If yes, answer Anomaly and give the precise time period of the anomaly in seconds. If no, answer Normal and give the time period [-1.0, -1.0].

Provide your answer within the <answer> </answer> tags: output exactly one word, Normal or Anomaly. Right after it, in the <glue> </glue> tags, give the time period in seconds in the format [start, end].

For example: <answer>Anomaly</answer><glue>[5.2, 10.4]</glue> or <answer>Normal</answer><glue>[-1.0, -1.0]</glue>"""  # noqa: E501

DEFAULT_CLS_THINK = """What type of anomaly appears in the video? If no anomaly appears, answer Normal. Select the answer from these class labels: [OPTION].

Output your thought process within the <think> </think> tags.

Then, provide your answer within the <answer> </answer> tags: output exactly one class label from the list, spelled as in the list.

For example: <think> your reasoning process here </think><answer> the class label </answer>"""  # noqa: E501

DEFAULT_CLS_NO_THINK = """What type of anomaly appears in the video? If no anomaly appears, answer Normal. Select the answer from these class labels: [OPTION].

Provide your answer within the <answer> </answer> tags: output exactly one class label from the list, spelled as in the list, with no other words.

For example: <answer> the class label </answer>"""  # noqa: E501
