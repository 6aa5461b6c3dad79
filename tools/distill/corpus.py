"""Smart-home corpus generator: user commands paired with the assistant's answer.

Every example is {"prompt": user text, "answer": json line + "\n" + spoken confirmation,
"action": the JSON object}. The answer is a pure function of the action, so the model only has to
understand the command; the spoken line is a fixed rendering of the action.

Held-out split (what the test measures is generalisation, not recall):
  * device names: some (location, kind) pairs - "garage window", "attic light" - occur only in the
    held-out set; every location and every kind on its own is seen in training, so the model can
    compose the device id ("attic" + "light" -> "attic_light") but has never seen the pair;
  * templates: for every intent some phrasings are reserved for the held-out set.
A held-out example uses a held-out device name or a held-out template (most use both).
"""
import json
import random

# Locations and the kinds of device that exist there. The device id is "<location>_<kind>"
# with spaces as underscores; garage_door, gate, thermostat and alarm are singletons.
LOCATIONS = ["front", "back", "side", "patio", "basement", "kitchen", "bedroom", "bathroom",
             "living room", "office", "hallway", "porch", "garden", "attic", "nursery",
             "guest room", "dining room", "laundry room", "balcony", "garage", "cellar"]
KINDS = {
    "door": ["front", "back", "side", "patio", "basement", "kitchen", "balcony", "cellar",
             "bedroom", "office", "laundry room", "attic"],
    "window": ["kitchen", "bedroom", "bathroom", "living room", "office", "attic", "nursery",
               "guest room", "dining room", "basement", "garage", "hallway"],
    "light": ["kitchen", "bedroom", "bathroom", "living room", "office", "hallway", "porch",
              "garden", "attic", "nursery", "guest room", "dining room", "laundry room",
              "basement", "garage", "balcony", "front", "patio"],
}
# (location, kind) pairs seen only in the held-out set.
HELDOUT_DEVICES = {("basement", "door"), ("office", "door"), ("attic", "door"),
                   ("attic", "window"), ("garage", "window"), ("dining room", "window"),
                   ("attic", "light"), ("laundry room", "light"), ("balcony", "light"),
                   ("patio", "light")}

OUT_OF_SCOPE = [
    "what is the weather tomorrow", "tell me a joke", "order a pizza", "call my mother",
    "play some jazz", "what time is it in tokyo", "send an email to bob", "who won the game last night",
    "how tall is mount everest", "book a flight to paris", "translate hello into spanish",
    "what is two plus two", "set a timer for ten minutes", "read me the news", "buy more milk",
    "how do i bake bread", "sing me a song", "what's the capital of france", "text my boss",
    "start the washing machine", "feed the cat", "recommend a movie", "how old are you",
    "what is the meaning of life", "find a good restaurant", "turn on the tv", "vacuum the floor",
    "water the plants", "what is my bank balance", "write a poem", "remind me to call dad",
    "open the fridge", "how far is the moon", "who are you", "what's on my calendar",
]
HELDOUT_OUT_OF_SCOPE = [
    "what's the score of the match", "order new shoes online", "tell me a bedtime story",
    "what is the stock price of apple", "wake me up at seven", "how do you spell necessary",
    "play the radio", "call a taxi", "what should i cook tonight", "mow the lawn",
]

PRE = ["", "", "", "please ", "hey, ", "hey home, ", "could you ", "can you ", "would you ",
       "would you mind to ", "i need you to ", "um, ", "ok ", "quick, ", "go ahead and ",
       "hi, please ", "can you please ", "i want you to ", "yo ", "computer, "]
POST = ["", "", "", "", " please", " thanks", " thank you", " now", " right now", " for me",
        " asap", " please and thanks", ", thanks", " if you can"]
# Held-out politeness (fresh fillers).
HPRE = ["kindly ", "assistant, ", "be a dear and ", "alright, "]
HPOST = [" cheers", " when you get a chance", " at once"]

# Phrasings per intent: (train templates, held-out templates). {d} is the device phrase.
TEMPLATES = {
    "unlock": (["unlock {d}", "unlock the {d}", "open the lock on the {d}", "{d} unlock",
                "let me in the {d}", "release the lock of the {d}", "the {d}, unlock it",
                "unbolt the {d}", "i need the {d} unlocked", "disengage the {d} lock"],
               ["make the {d} unlocked", "can the {d} be unlocked", "drop the lock on the {d}"]),
    "lock": (["lock {d}", "lock the {d}", "lock up the {d}", "{d} lock", "secure the {d}",
              "bolt the {d}", "the {d}, lock it", "make sure the {d} is locked",
              "i want the {d} locked", "engage the {d} lock"],
             ["lock down the {d}", "get the {d} locked", "keep the {d} locked"]),
    "open": (["open {d}", "open the {d}", "open up the {d}", "{d} open", "the {d}, open it",
              "swing the {d} open", "i want the {d} open", "crack open the {d}", "raise the {d}"],
             ["pop the {d} open", "get the {d} open", "let some air in through the {d}"]),
    "close": (["close {d}", "close the {d}", "shut the {d}", "{d} close", "the {d}, close it",
               "shut the {d} please", "i want the {d} closed", "pull the {d} shut", "lower the {d}"],
              ["get the {d} shut", "make the {d} closed", "seal the {d}"]),
    "turn_on": (["turn on the {d}", "switch on the {d}", "{d} on", "turn the {d} on", "lights on in the {r}",
                 "light up the {r}", "i need light in the {r}", "put the {d} on", "power on the {d}",
                 "it is dark in the {r}"],
                ["illuminate the {r}", "get the {d} going", "activate the {d}"]),
    "turn_off": (["turn off the {d}", "switch off the {d}", "{d} off", "turn the {d} off",
                  "lights off in the {r}", "kill the {d}", "no more light in the {r}",
                  "power off the {d}", "shut off the {d}"],
                 ["deactivate the {d}", "cut the {d}", "darken the {r}"]),
    "dim": (["dim the {d} to {v} percent", "set the {d} to {v} percent", "{d} to {v}%",
             "dim the {d} to {v}%", "make the {d} {v} percent", "{d} at {v} percent please",
             "brightness of the {d} to {v}"],
            ["lower the {d} to {v} percent", "put the {d} at {v}%"]),
    "set_temperature": (["set the temperature to {v}", "set the thermostat to {v} degrees",
                         "make it {v} degrees", "heat to {v}", "thermostat {v}", "i want it at {v} degrees",
                         "change the temperature to {v} degrees", "set heating to {v}"],
                        ["warm the house to {v} degrees", "adjust the thermostat to {v}", "keep it at {v} degrees"]),
    "arm": (["arm the alarm", "turn on the alarm", "arm the security system", "alarm on",
             "activate the alarm", "set the alarm", "enable the alarm system", "we are leaving, arm the alarm"],
            ["switch the alarm on", "arm security", "engage the alarm"]),
    "disarm": (["disarm the alarm", "turn off the alarm", "disarm the security system", "alarm off",
                "deactivate the alarm", "disable the alarm", "stop the alarm", "i'm home, disarm the alarm"],
               ["switch the alarm off", "disarm security", "shut the alarm off"]),
    "status": (["is the {d} locked", "is the {d} open", "is the {d} closed", "status of the {d}",
                "check the {d}", "did i lock the {d}", "what's the state of the {d}", "is the {d} on",
                "tell me about the {d}"],
               ["how is the {d}", "report on the {d}", "any news on the {d}"]),
    "view_camera": (["who is at the {d}", "who's at the {d}", "show me the {d} camera",
                     "is someone at the {d}", "who rang the {d} bell", "show the {d}",
                     "somebody is knocking at the {d}"],
                    ["who is standing at the {d}", "let me see the {d}"]),
    "none": (["{q}", "can you {q}", "please {q}", "{q} please", "i want you to {q}"],
             ["could you maybe {q}", "{q} for me"]),
}
# Intents each kind of device accepts.
KIND_INTENTS = {"door": ["unlock", "lock", "open", "close", "status", "view_camera"],
                "window": ["open", "close", "status"],
                "light": ["turn_on", "turn_off", "dim", "status"]}
SINGLETONS = {"garage_door": (["garage door", "garage"], ["unlock", "lock", "open", "close", "status"]),
              "gate": (["gate", "garden gate"], ["unlock", "lock", "open", "close", "status"]),
              "thermostat": (["thermostat"], ["set_temperature", "status"]),
              "alarm": (["alarm", "security system"], ["arm", "disarm", "status"])}

VERB = {"unlock": "Unlocking", "lock": "Locking", "open": "Opening", "close": "Closing",
        "turn_on": "Turning on", "turn_off": "Turning off", "dim": "Dimming", "arm": "Arming",
        "disarm": "Disarming", "status": "Checking", "view_camera": "Showing who is at"}


def device_id(loc, kind):
    return (loc + " " + kind).replace(" ", "_")


def speak(dev):
    return "the " + dev.replace("_", " ")


def answer_for(action):
    intent = action["intent"]
    if intent == "none":
        spoken = "Sorry, I can only help with your home devices."
    elif intent == "set_temperature":
        spoken = "Setting the thermostat to %d degrees." % action["value"]
    elif intent == "dim":
        spoken = "Dimming %s to %d percent." % (speak(action["device"]), action["value"])
    else:
        spoken = "%s %s." % (VERB[intent], speak(action["device"]))
    return json.dumps(action, separators=(",", ":")) + "\n" + spoken


def typo(word, rng):
    if len(word) < 4:
        return word
    i = rng.randrange(1, len(word) - 1)
    op = rng.randrange(4)
    if op == 0:
        return word[:i] + word[i + 1:]                       # drop
    if op == 1:
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]  # swap
    if op == 2:
        return word[:i] + word[i] + word[i:]                 # double
    return word[:i] + rng.choice("aeiourstnl") + word[i + 1:]  # substitute


def dress(text, rng, heldout):
    """Fillers, politeness, typos, casing and punctuation around a bare command."""
    pre = rng.choice(PRE + (HPRE if heldout else []))
    post = rng.choice(POST + (HPOST if heldout else []))
    words = (pre + text + post).split(" ")
    if rng.random() < 0.25:
        k = rng.randrange(len(words))
        words[k] = typo(words[k], rng)
    s = " ".join(w for w in words if w)
    r = rng.random()
    if r < 0.3:
        s = s[0].upper() + s[1:]
    elif r < 0.35:
        s = s.upper()
    p = rng.random()
    question = text.startswith(("is ", "who", "did ", "what", "how", "can ", "any "))
    if p < 0.3:
        s += "?" if question else "."
    elif p < 0.4:
        s += "!"
    return s


def device_phrase(loc, kind, rng):
    if kind == "light":
        forms = [loc + " light", loc + " lights", "light in the " + loc, "lamp in the " + loc]
    elif kind == "window":
        forms = [loc + " window", "window in the " + loc]
    else:
        forms = [loc + " door", loc + " door"]
    return rng.choice(forms)


def devices(heldout):
    """(id, kind, location, [phrases]) of every device in the split."""
    out = []
    for kind, locs in KINDS.items():
        for loc in locs:
            if ((loc, kind) in HELDOUT_DEVICES) == heldout:
                out.append((device_id(loc, kind), kind, loc))
    return out


def example(rng, heldout_devices, heldout_templates):
    """One example; heldout_* pick the device-name and template pools."""
    r = rng.random()
    if r < 0.08:
        intent = "none"
    elif r < 0.14:
        intent = rng.choice(["set_temperature", "arm", "disarm"])
    else:
        intent = None
    templates_of = lambda it: TEMPLATES[it][1 if heldout_templates else 0]
    if intent == "none":
        q = rng.choice(HELDOUT_OUT_OF_SCOPE if heldout_devices else OUT_OF_SCOPE)
        text = rng.choice(templates_of("none")).format(q=q)
        action = {"intent": "none"}
    elif intent == "set_temperature":
        v = rng.randrange(15, 29)
        text = rng.choice(templates_of(intent)).format(v=v)
        action = {"intent": intent, "device": "thermostat", "value": v}
    elif intent in ("arm", "disarm"):
        text = rng.choice(templates_of(intent))
        action = {"intent": intent, "device": "alarm"}
    else:
        pool = devices(heldout_devices)
        if not heldout_devices and rng.random() < 0.15:
            dev = rng.choice(sorted(SINGLETONS))
            phrases, intents = SINGLETONS[dev]
            intents = [i for i in intents if i in TEMPLATES and "{d}" in "".join(TEMPLATES[i][0])]
            intent = rng.choice(intents)
            phrase, loc = rng.choice(phrases), rng.choice(phrases)
        else:
            dev, kind, loc = rng.choice(pool)
            intent = rng.choice(KIND_INTENTS[kind])
            phrase = device_phrase(loc, kind, rng)
        template = rng.choice(templates_of(intent))
        action = {"intent": intent, "device": dev}
        v = None
        if intent == "dim":
            v = rng.choice(range(10, 100, 10)) if rng.random() < 0.7 else rng.randrange(5, 96)
            action["value"] = v
        text = template.format(d=phrase, r=loc, v=v)
    return {"prompt": dress(text, rng, heldout_templates), "answer": answer_for(action), "action": action}


def train_set(n, seed):
    rng = random.Random(seed)
    return [example(rng, False, False) for _ in range(n)]


def heldout_set(n, seed):
    """Held-out examples: a third new devices with seen templates, a third seen devices with new
    templates, a third both new."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        mode = i % 3
        out.append(example(rng, mode != 1, mode != 0))
    return out
